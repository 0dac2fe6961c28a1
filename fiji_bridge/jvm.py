"""The one ImageJ of this process: finding Java and ``ij.jar``, starting the JVM.

An :class:`ImageJSession` owns the one Java virtual machine of this process (JPype can
start only one per process). It is started either

* through **pyimagej** when a Fiji.app directory is given (argument or the environment
  variable ``FOCUSQA_FIJI_DIR``): ``imagej.init(fiji_dir, mode=...)``; or
* through **scyjava + ij.jar** otherwise (Debian/Ubuntu ``libij-java`` installs
  ``/usr/share/java/ij.jar``; override with ``FOCUSQA_IJ_JAR``). Java is never
  downloaded on this path (``fetch="never"``).

The other bridge modules use only ImageJ1 classes, which exist in both setups, through
:func:`jimport`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from napari_focusqa.core.errors import FocusQAError

#: where ImageJ 1.x is looked for when no Fiji.app is given (first hit wins)
IJ_JAR_CANDIDATES = (
    "/usr/share/java/ij.jar",
    "/usr/share/imagej/ij.jar",
    "/usr/local/share/java/ij.jar",
)


class FijiError(FocusQAError):
    """ImageJ/Fiji is not available or was used wrongly."""


# --------------------------------------------------------------------------------------
# finding Java / ImageJ
# --------------------------------------------------------------------------------------
def java_executable() -> str | None:
    """Path of the ``java`` launcher (``$JAVA_HOME/bin/java`` first, then ``PATH``)."""
    home = os.environ.get("JAVA_HOME")
    if home:
        cand = Path(home) / "bin" / ("java.exe" if os.name == "nt" else "java")
        if cand.is_file():
            return str(cand)
    return shutil.which("java")


def find_ij_jar(ij_jar: str | os.PathLike[str] | None = None) -> Path:
    """Locate ImageJ 1.x's ``ij.jar``.

    Parameters
    ----------
    ij_jar : path, optional
        Explicit jar, or an ImageJ/Fiji directory containing ``ij.jar`` (or
        ``jars/ij-*.jar``). Defaults to ``$FOCUSQA_IJ_JAR`` then :data:`IJ_JAR_CANDIDATES`.

    Raises
    ------
    FijiError
        If no jar is found (the message says how to install one).
    """
    cands: list[Path] = []
    if ij_jar is not None:
        cands.append(Path(ij_jar))
    elif os.environ.get("FOCUSQA_IJ_JAR"):
        cands.append(Path(os.environ["FOCUSQA_IJ_JAR"]))
    else:
        cands.extend(Path(c) for c in IJ_JAR_CANDIDATES)
    for c in cands:
        if c.is_file():
            return c
        if c.is_dir():
            hits = [c / "ij.jar", *sorted((c / "jars").glob("ij-*.jar"))]
            for h in hits:
                if h.is_file():
                    return h
    where = ", ".join(str(c) for c in cands)
    raise FijiError(
        f"ij_jar: ImageJ's ij.jar not found (looked at {where}); install it "
        "(Debian/Ubuntu: apt-get install libij-java) or set FOCUSQA_IJ_JAR"
    )


# --------------------------------------------------------------------------------------
# the session
# --------------------------------------------------------------------------------------
class ImageJSession:
    """A running ImageJ inside this Python process.

    Use :func:`start` (or :func:`session`) rather than the constructor.

    Attributes
    ----------
    backend : {"imagej1", "pyimagej"}
    ij_jar : Path or None
        The jar on the classpath (``imagej1`` backend).
    fiji_dir : Path or None
        The Fiji.app directory (``pyimagej`` backend).
    ij : object or None
        The pyimagej ``ImageJ2`` gateway (``pyimagej`` backend only).
    """

    def __init__(
        self,
        backend: str,
        *,
        ij_jar: Path | None = None,
        fiji_dir: Path | None = None,
        gateway: Any = None,
    ) -> None:
        self.backend = backend
        self.ij_jar = ij_jar
        self.fiji_dir = fiji_dir
        self.ij = gateway

    def jimport(self, name: str) -> Any:
        """Import a Java class by its fully qualified name."""
        import scyjava

        return scyjava.jimport(name)

    @property
    def IJ(self) -> Any:  # noqa: N802 - the Java class name
        return self.jimport("ij.IJ")

    @property
    def version(self) -> str:
        """ImageJ 1.x version string (e.g. ``"1.53t"``)."""
        return str(self.IJ.getVersion())

    @property
    def headless(self) -> bool:
        return bool(self.jimport("java.awt.GraphicsEnvironment").isHeadless())

    def run_macro(self, code: str, args: str = "") -> Any:
        """Run ImageJ macro code.

        ``pyimagej``: ``ij.py.run_macro(code, args)`` (pyimagej's documented call; ``args``
        there is a dict or ``None``, so a non-empty string is passed as ``{"arg": args}``).
        ``imagej1``: ``ij.IJ.runMacro(code, args)``, returning the macro's string result.
        Most macro commands need a display (not ``mode="headless"``).
        """
        if self.backend == "pyimagej":
            return self.ij.py.run_macro(code, {"arg": args} if args else None)
        return self.IJ.runMacro(code, args)

    def shutdown_threads(self) -> None:
        """Stop ImageJ's shared thread pool so the Python process can exit.

        ImageJ's multithreaded filters leave ``ij.util.ThreadUtil.threadPoolExecutor``
        running (non-daemon threads keep the interpreter alive at exit).
        """
        try:
            tu = self.jimport("ij.util.ThreadUtil")
            pool = getattr(tu, "threadPoolExecutor", None)
            if pool is not None:
                pool.shutdownNow()
        except Exception:  # noqa: BLE001 - best effort at shutdown
            pass

    def __repr__(self) -> str:
        where = self.fiji_dir if self.backend == "pyimagej" else self.ij_jar
        return f"ImageJSession(backend={self.backend!r}, {where})"


_SESSION: ImageJSession | None = None


def _init_pyimagej(fiji_dir: Path, mode: str) -> Any:
    """``imagej.init(fiji_dir, mode=mode)`` (pyimagej's documented entry point)."""
    try:
        import imagej
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise FijiError(
            "fiji_dir: using a Fiji.app needs pyimagej (pip install 'napari-focusqa[fiji]')"
        ) from exc
    return imagej.init(str(fiji_dir), mode=mode)


def _check_fiji_dir(fiji_dir: str | os.PathLike[str]) -> Path:
    d = Path(fiji_dir).expanduser()
    if not d.is_dir():
        raise FijiError(f"fiji_dir: {d} is not a directory")
    if not (d / "jars").is_dir():
        raise FijiError(f"fiji_dir: {d} has no jars/ folder; is it a Fiji.app directory?")
    return d.resolve()


def start(
    fiji_dir: str | os.PathLike[str] | None = None,
    *,
    ij_jar: str | os.PathLike[str] | None = None,
    mode: str = "headless",
    java_options: Sequence[str] = (),
) -> ImageJSession:
    """Start ImageJ in this process (once) and return the session.

    Parameters
    ----------
    fiji_dir : path, optional
        A Fiji.app directory: start ImageJ2 + ImageJ1 through pyimagej
        (``imagej.init(fiji_dir, mode=mode)``). Defaults to ``$FOCUSQA_FIJI_DIR``; when
        neither is set the plain ImageJ 1.x jar is used through scyjava.
    ij_jar : path, optional
        ``ij.jar`` for the scyjava path (see :func:`find_ij_jar`).
    mode : {"headless", "gui", "interactive"}
        pyimagej mode; on the scyjava path ``"headless"`` sets ``java.awt.headless``.
        Overlays, ResultsTables and conversions work headless; showing windows does not.
    java_options : sequence of str
        Extra JVM options (e.g. ``["-Xmx4g"]``), applied before the JVM starts.

    Raises
    ------
    FijiError
        No Java, no ImageJ, a bad ``fiji_dir``/``mode``, or a JVM already running with a
        different setup (JPype can start only one JVM per process).
    """
    global _SESSION
    if mode not in ("headless", "gui", "interactive"):
        raise FijiError(f"mode: expected 'headless', 'gui' or 'interactive', got {mode!r}")
    if fiji_dir is None and os.environ.get("FOCUSQA_FIJI_DIR"):
        fiji_dir = os.environ["FOCUSQA_FIJI_DIR"]
    want = "pyimagej" if fiji_dir is not None else "imagej1"
    if _SESSION is not None:
        if _SESSION.backend != want or (
            fiji_dir is not None and _SESSION.fiji_dir != _check_fiji_dir(fiji_dir)
        ):
            raise FijiError(
                f"fiji_dir: ImageJ already runs in this process as {_SESSION!r}; JPype can "
                "start only one JVM per process"
            )
        return _SESSION

    try:
        import scyjava
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise FijiError("the Fiji bridge needs scyjava (pip install 'napari-focusqa[fiji]')") from exc

    if want == "pyimagej":
        assert fiji_dir is not None
        d = _check_fiji_dir(fiji_dir)
        for opt in java_options:
            scyjava.config.add_option(opt)
        _SESSION = ImageJSession("pyimagej", fiji_dir=d, gateway=_init_pyimagej(d, mode))
        return _SESSION

    jar = find_ij_jar(ij_jar)
    if scyjava.jvm_started():
        # someone else started the JVM: usable only if ImageJ 1.x is on its classpath
        try:
            scyjava.jimport("ij.IJ")
        except Exception as exc:  # noqa: BLE001 - JPype raises various types
            raise FijiError(
                "ij_jar: a JVM already runs in this process without ImageJ on its "
                "classpath; start the Fiji bridge before other Java users"
            ) from exc
        _SESSION = ImageJSession("imagej1", ij_jar=jar)
        return _SESSION
    if java_executable() is None and not os.environ.get("JAVA_HOME"):
        raise FijiError(
            "java: no Java runtime found (install one, e.g. apt-get install default-jre, "
            "or set JAVA_HOME)"
        )
    try:
        scyjava.config.set_java_constraints(fetch="never")
    except AttributeError:  # pragma: no cover - older scyjava
        pass
    scyjava.config.add_classpath(str(jar))
    if mode == "headless":
        scyjava.config.add_option("-Djava.awt.headless=true")
    for opt in java_options:
        scyjava.config.add_option(opt)
    try:
        scyjava.start_jvm()
    except Exception as exc:  # noqa: BLE001
        raise FijiError(f"java: could not start the JVM: {exc}") from exc
    _SESSION = ImageJSession("imagej1", ij_jar=jar)
    return _SESSION


def session() -> ImageJSession:
    """The running session, starting the default one (see :func:`start`) if needed."""
    return _SESSION if _SESSION is not None else start()


def jimport(name: str) -> Any:
    """Import a Java class through the running session (starting the default one)."""
    return session().jimport(name)

"""Python side of the Fiji/ImageJ bridge.

An :class:`ImageJSession` owns the one Java virtual machine of this process (JPype can
start only one per process). It is started either

* through **pyimagej** when a Fiji.app directory is given (argument or the environment
  variable ``FOCUSQA_FIJI_DIR``): ``imagej.init(fiji_dir, mode=...)``; or
* through **scyjava + ij.jar** otherwise (Debian/Ubuntu ``libij-java`` installs
  ``/usr/share/java/ij.jar``; override with ``FOCUSQA_IJ_JAR``). Java is never
  downloaded on this path (``fetch="never"``).

Everything else in this module uses only ImageJ1 classes (``ij.ImagePlus``,
``ij.gui.Overlay``, ``ij.measure.ResultsTable``), which exist in both setups:

* :func:`to_imageplus` / :func:`from_imageplus`: numpy (or :class:`ImageData`) <->
  ``ImagePlus`` for 8-, 16- and 32-bit data, stacks and hyperstacks (C, Z, T) and
  calibration (pixel size, z-step in µm);
* :func:`result_overlay`: a :class:`FocusResult` or :class:`StackResult` as an ImageJ
  ``Overlay`` of patch rectangles coloured with
  :func:`napari_focusqa.core.colors.level_colors_uint8` (the map the CLI and napari use),
  positioned on their slice, plus a colour legend;
* :func:`results_table` / :func:`patch_results_table`: the CLI CSV rows (same column
  names, :data:`napari_focusqa.core.assess.RECORD_COLUMNS`) as a ``ResultsTable``;
* :func:`assess_imageplus`: runs the core on an ``ImagePlus`` and attaches both.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_focusqa.core.assess import RECORD_COLUMNS, FocusResult
from napari_focusqa.core.colors import level_colors_uint8
from napari_focusqa.core.errors import FocusQAError, ImageError
from napari_focusqa.core.zstack import StackResult
from napari_focusqa.io.reader import ImageData

#: where ImageJ 1.x is looked for when no Fiji.app is given (first hit wins)
IJ_JAR_CANDIDATES = (
    "/usr/share/java/ij.jar",
    "/usr/share/imagej/ij.jar",
    "/usr/local/share/java/ij.jar",
)

#: axes order of ImageJ hyperstacks as numpy sees them
HYPERSTACK_AXES = "TZCYX"

#: rectangles are drawn this many pixels inside their patch (as the CLI overlay PNG does),
#: so that neighbouring patches' outlines stay distinguishable
ROI_INSET = 1

#: overlay ROI name prefixes (used by tests and by users filtering the overlay)
PATCH_ROI_PREFIX = "focusqa patch"
LEGEND_ROI_PREFIX = "focusqa legend"

_UNIT_TO_UM = {
    "micron": 1.0, "microns": 1.0, "µm": 1.0, "um": 1.0, "μm": 1.0, "\\u00b5m": 1.0,
    "nm": 1e-3, "nanometer": 1e-3, "nanometers": 1e-3,
    "mm": 1e3, "millimeter": 1e3, "cm": 1e4, "m": 1e6, "meter": 1e6,
}


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

    # thin conveniences so a session is all a user needs
    def to_imageplus(self, data: Any, **kw: Any) -> Any:
        return to_imageplus(data, **kw)

    def from_imageplus(self, imp: Any) -> ImageData:
        return from_imageplus(imp)

    def assess_imageplus(self, imp: Any, model: Any = None, **kw: Any) -> BridgeResult:
        return assess_imageplus(imp, model, **kw)

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

    def to_python(self, obj: Any) -> Any:
        """Java image -> Python: ``ij.py.from_java`` (pyimagej) or :func:`from_imageplus`."""
        if self.backend == "pyimagej":
            return self.ij.py.from_java(obj)
        return from_imageplus(obj)

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


def _jimport(name: str) -> Any:
    return session().jimport(name)


# --------------------------------------------------------------------------------------
# numpy <-> ImagePlus
# --------------------------------------------------------------------------------------
def _ij_dtype(dtype: np.dtype) -> np.dtype:
    """The numpy dtype an array is stored as in ImageJ (8-, 16- or 32-bit)."""
    if dtype == np.uint8 or dtype == np.bool_:
        return np.dtype(np.uint8)
    if dtype == np.uint16:
        return np.dtype(np.uint16)
    if dtype.kind in "iuf":
        return np.dtype(np.float32)
    raise ImageError(f"data: dtype {dtype} cannot be stored in ImageJ (8/16/32-bit only)")


def _to_tzcyx(arr: np.ndarray, axes: str | None) -> np.ndarray:
    if axes is None:
        axes = {2: "YX", 3: "ZYX", 4: "ZCYX", 5: "TZCYX"}.get(arr.ndim)
        if axes is None:
            raise ImageError(f"data: expected 2 to 5 dimensions, got shape {arr.shape}")
    axes = axes.upper()
    if len(axes) != arr.ndim:
        raise ImageError(f"axes: {axes!r} does not match data with {arr.ndim} dimensions")
    if len(set(axes)) != len(axes) or not set(axes) <= set(HYPERSTACK_AXES) or not axes.endswith("YX"):
        raise ImageError(f"axes: expected distinct letters from 'TZCYX' ending in 'YX', got {axes!r}")
    for a in HYPERSTACK_AXES:
        if a not in axes:
            arr = arr[np.newaxis]
            axes = a + axes
    return np.transpose(arr, [axes.index(a) for a in HYPERSTACK_AXES])


def to_imageplus(
    data: Any,
    title: str = "image",
    *,
    axes: str | None = None,
    pixel_size_um: float | None = None,
    z_step_um: float | None = None,
    channel_names: Sequence[str | None] | None = None,
) -> Any:
    """Make an ImageJ ``ImagePlus`` from a numpy array or :class:`ImageData`.

    Parameters
    ----------
    data : array_like or ImageData
        ``uint8`` -> 8-bit, ``uint16`` -> 16-bit, other integer/float dtypes -> 32-bit
        float (integers above 2**24 lose precision), ``bool`` -> 8-bit 0/1.
    title : str
        Window title.
    axes : str, optional
        Letters from ``"TZCYX"`` ending in ``"YX"``; default by dimension: ``YX``,
        ``ZYX``, ``ZCYX``, ``TZCYX``. An :class:`ImageData` is always ``TZCYX``.
    pixel_size_um, z_step_um : float, optional
        Calibration in µm (taken from an :class:`ImageData` when not given).
    channel_names : sequence of str, optional
        Stored as the slice labels of each channel.

    Returns
    -------
    ij.ImagePlus
        A hyperstack when more than one of C/Z/T is > 1 (and not just Z).
    """
    if isinstance(data, ImageData):
        arr, axes = data.data, "TZCYX"
        pixel_size_um = data.pixel_size_um if pixel_size_um is None else pixel_size_um
        z_step_um = data.z_step_um if z_step_um is None else z_step_um
        if channel_names is None:
            channel_names = data.channel_names
    else:
        arr = np.asarray(data)
    if arr.dtype.kind == "c" or arr.dtype.kind not in "biuf":
        raise ImageError(f"data: dtype {arr.dtype} cannot be stored in ImageJ (8/16/32-bit only)")
    tzcyx = _to_tzcyx(arr, axes)
    nt, nz, nc, h, w = tzcyx.shape
    if h < 1 or w < 1:
        raise ImageError(f"data: empty image of shape {arr.shape}")
    if channel_names is not None and len(channel_names) != nc:
        raise ImageError(f"channel_names: expected {nc} names, got {len(channel_names)}")
    ij_dt = _ij_dtype(arr.dtype)
    from jpype import JArray, JByte, JFloat, JShort

    jtype, view = {
        np.dtype(np.uint8): (JByte, np.int8),
        np.dtype(np.uint16): (JShort, np.int16),
        np.dtype(np.float32): (JFloat, np.float32),
    }[ij_dt]
    ImageStack = _jimport("ij.ImageStack")
    ImagePlus = _jimport("ij.ImagePlus")
    stack = ImageStack(int(w), int(h))
    for t in range(nt):
        for z in range(nz):
            for c in range(nc):
                plane = np.ascontiguousarray(tzcyx[t, z, c].astype(ij_dt, copy=False))
                pixels = JArray(jtype)(plane.view(view).ravel())
                label = None if channel_names is None else channel_names[c]
                stack.addSlice("" if label is None else str(label), pixels)
    imp = ImagePlus(str(title), stack)
    imp.setDimensions(int(nc), int(nz), int(nt))
    if nc > 1 or nt > 1:
        imp.setOpenAsHyperStack(True)
    if nc > 1:
        CompositeImage = _jimport("ij.CompositeImage")
        imp = CompositeImage(imp, CompositeImage.GRAYSCALE)
    cal = imp.getCalibration()
    if pixel_size_um is not None:
        if not (np.isfinite(pixel_size_um) and pixel_size_um > 0):
            raise ImageError(f"pixel_size_um: expected a positive number, got {pixel_size_um!r}")
        cal.pixelWidth = float(pixel_size_um)
        cal.pixelHeight = float(pixel_size_um)
        cal.setUnit("micron")
    if z_step_um is not None:
        if not (np.isfinite(z_step_um) and z_step_um > 0):
            raise ImageError(f"z_step_um: expected a positive number, got {z_step_um!r}")
        cal.pixelDepth = float(z_step_um)
        cal.setUnit("micron")
    if ij_dt != np.uint8:
        imp.resetDisplayRange()
    return imp


def _plane_array(pixels: Any, bit_depth: int, h: int, w: int) -> np.ndarray:
    if bit_depth == 8:
        a = np.asarray(pixels, dtype=np.int8).view(np.uint8)
    elif bit_depth == 16:
        a = np.asarray(pixels, dtype=np.int16).view(np.uint16)
    else:
        a = np.asarray(pixels, dtype=np.float32)
    return a.reshape(h, w)


def _um_factor(unit: str) -> float | None:
    return _UNIT_TO_UM.get(str(unit).strip().lower().replace("μ", "µ"))


def from_imageplus(imp: Any) -> ImageData:
    """Read an ``ImagePlus`` into an :class:`ImageData` (data ``TZCYX``, calibration).

    Raises
    ------
    ImageError
        For RGB (24-bit) images: split the channels first (Image > Color > Split Channels).
    """
    if imp is None:
        raise ImageError("imp: no image (None)")
    bits = int(imp.getBitDepth())
    if bits == 24:
        raise ImageError(
            f"imp: {imp.getTitle()} is an RGB image; convert it to a stack of channels first"
        )
    nc, nz, nt = int(imp.getNChannels()), int(imp.getNSlices()), int(imp.getNFrames())
    w, h = int(imp.getWidth()), int(imp.getHeight())
    stack = imp.getStack()
    n = int(stack.getSize())
    if n != nc * nz * nt:
        raise ImageError(f"imp: {n} planes do not match C*Z*T = {nc}*{nz}*{nt}")
    dtype = {8: np.uint8, 16: np.uint16, 32: np.float32}[bits]
    out = np.empty((nt, nz, nc, h, w), dtype=dtype)
    flat = out.reshape(n, h, w)  # ImageJ order: channel fastest, then slice, then frame
    for i in range(n):
        flat[i] = _plane_array(stack.getPixels(i + 1), bits, h, w)
    cal = imp.getCalibration()
    f = _um_factor(cal.getUnit())
    px = float(cal.pixelWidth) * f if f is not None else None
    dz = float(cal.pixelDepth) * f if f is not None and nz > 1 else None
    names: list[str | None] = []
    for c in range(nc):
        label = stack.getSliceLabel(c + 1)
        label = None if label is None else str(label).split("\n")[0].strip()
        names.append(label or None)
    fi = imp.getOriginalFileInfo()
    path = None
    if fi is not None and fi.fileName and fi.directory:
        path = str(Path(str(fi.directory)) / str(fi.fileName))
    info = imp.getInfoProperty()
    meta = {"title": str(imp.getTitle()), "info": None if info is None else str(info)}
    return ImageData(
        data=out,
        path=path,
        channel_names=names,
        z_step_um=None if dz is None else round(dz, 9),
        pixel_size_um=None if px is None else round(px, 9),
        original_axes="TZCYX",
        metadata=meta,
    )


# --------------------------------------------------------------------------------------
# FocusResult / StackResult -> Overlay
# --------------------------------------------------------------------------------------
def _slices_of(result: FocusResult | StackResult | Sequence[FocusResult]) -> list[FocusResult]:
    if isinstance(result, FocusResult):
        return [result]
    if isinstance(result, StackResult):
        return [s for c in result.channels for s in c.slices]
    out = list(result)
    if not all(isinstance(r, FocusResult) for r in out):
        raise FijiError("result: expected a FocusResult, a StackResult or a list of FocusResult")
    return out


def patch_rois(result: FocusResult) -> list[dict[str, Any]]:
    """Rectangles of one result: ``x, y, w, h, level, certainty, rgb, hex`` per patch.

    ``x, y, w, h`` is the patch; ``draw`` is the rectangle drawn, :data:`ROI_INSET`
    pixels inside it (like the CLI overlay PNG). The colours are :func:`level_colors_uint8` of the patch level and certainty (the same
    map as the CLI overlay PNG and napari). Empty when the result has no model output.
    """
    if result.grid is None or result.patch_level is None or result.patch_certainty is None:
        return []
    k = result.num_classes or 11
    rgb = level_colors_uint8(result.patch_level, result.patch_certainty, k)
    boxes = result.grid.boxes()
    out = []
    for r in range(result.grid.rows):
        for c in range(result.grid.cols):
            y0, x0, y1, x1 = (int(v) for v in boxes[r, c])
            col = tuple(int(v) for v in rgb[r, c])
            out.append(
                {
                    "row": r, "col": c, "x": x0, "y": y0, "w": x1 - x0, "h": y1 - y0,
                    "draw": (x0 + ROI_INSET, y0 + ROI_INSET,
                             x1 - x0 - 2 * ROI_INSET, y1 - y0 - 2 * ROI_INSET),
                    "level": int(result.patch_level[r, c]),
                    "certainty": round(float(result.patch_certainty[r, c]), 6),
                    "rgb": col,
                    "hex": "#{:02x}{:02x}{:02x}".format(*col),
                }
            )
    return out


def legend_entries(num_classes: int = 11) -> list[dict[str, Any]]:
    """Colour legend: one entry per level at full certainty (``level``, ``rgb``, ``hex``)."""
    rgb = level_colors_uint8(np.arange(num_classes), np.ones(num_classes), num_classes)
    return [
        {"level": k, "rgb": tuple(int(v) for v in rgb[k]),
         "hex": "#{:02x}{:02x}{:02x}".format(*(int(v) for v in rgb[k]))}
        for k in range(num_classes)
    ]


def _position_of(res: FocusResult) -> tuple[int, int, int]:
    s = res.source
    c = int(s.get("channel_index") or 0)
    z = int(s.get("z_index") or 0)
    t = int(s.get("t_index") or 0)
    return c + 1, z + 1, t + 1


def result_overlay(
    result: FocusResult | StackResult | Sequence[FocusResult],
    *,
    imp: Any = None,
    overlay: Any = None,
    legend: bool = True,
    stroke_width: float = 1.0,
    positioned: bool | None = None,
) -> Any:
    """Draw focus results as an ImageJ ``Overlay``.

    Parameters
    ----------
    result : FocusResult, StackResult or list of FocusResult
        Each result's ``source`` (``channel_index``, ``z_index``, ``t_index``) gives the
        ImageJ position of its rectangles.
    imp : ImagePlus, optional
        The image the overlay is for: decides between hyperstack positions ``(c, z, t)``
        and plain stack positions, and sizes the legend.
    overlay : ij.gui.Overlay, optional
        Add to this overlay instead of a new one.
    legend : bool
        Add a colour legend (one square per level, position 0 = every slice).
    positioned : bool, optional
        Give every rectangle its slice position (default: when there is more than one
        plane in ``result`` or ``imp`` is a stack).

    Returns
    -------
    ij.gui.Overlay
    """
    Overlay = _jimport("ij.gui.Overlay")
    Roi = _jimport("ij.gui.Roi")
    Color = _jimport("java.awt.Color")
    slices = _slices_of(result)
    ov = Overlay() if overlay is None else overlay
    if imp is not None:
        hyper = bool(imp.isHyperStack()) or int(imp.getNChannels()) > 1 or int(imp.getNFrames()) > 1
        if positioned is None:
            positioned = int(imp.getStackSize()) > 1
    else:
        chans = {r.source.get("channel_index") or 0 for r in slices}
        frames = {r.source.get("t_index") or 0 for r in slices}
        hyper = len(chans) > 1 or len(frames) > 1
    if positioned is None:
        positioned = len(slices) > 1
    k = 11
    for res in slices:
        if res.num_classes:
            k = res.num_classes
        c, z, t = _position_of(res)
        for p in patch_rois(res):
            roi = Roi(*p["draw"])
            roi.setStrokeColor(Color(*p["rgb"]))
            roi.setStrokeWidth(float(stroke_width))
            roi.setName(
                f"{PATCH_ROI_PREFIX} c{c} z{z} t{t} r{p['row']} c{p['col']} "
                f"level {p['level']} certainty {p['certainty']:.3f}"
            )
            if positioned:
                if hyper:
                    roi.setPosition(c, z, t)
                else:
                    roi.setPosition(z)
            ov.add(roi)
    if legend and any(r.patch_level is not None for r in slices):
        _add_legend(ov, k, imp)
    return ov


def legend_text(k: int, width: int) -> str:
    """Caption under the legend squares (shorter on narrow images)."""
    if width >= 360:
        return f"0 in focus ... {k - 1} defocused; dark = uncertain"
    return f"0 in focus ... {k - 1}"


def _add_legend(ov: Any, k: int, imp: Any = None) -> None:
    Roi = _jimport("ij.gui.Roi")
    TextRoi = _jimport("ij.gui.TextRoi")
    Color = _jimport("java.awt.Color")
    Font = _jimport("java.awt.Font")
    width = int(imp.getWidth()) if imp is not None else 400
    size = int(max(6, min(16, (width - 8) // (k + 1))))
    x0, y0 = 2, 2
    for e in legend_entries(k):
        sq = Roi(x0 + e["level"] * size, y0, size, size)
        sq.setFillColor(Color(*e["rgb"]))
        sq.setName(f"{LEGEND_ROI_PREFIX} level {e['level']}")
        sq.setPosition(0)
        ov.add(sq)
    font = Font("SansSerif", Font.PLAIN, int(max(8, size - 2)))
    txt = TextRoi(x0, y0 + size + 1, legend_text(k, width), font)
    txt.setStrokeColor(Color(255, 255, 255))
    txt.setName(f"{LEGEND_ROI_PREFIX} text")
    txt.setPosition(0)
    ov.add(txt)


# --------------------------------------------------------------------------------------
# ResultsTable
# --------------------------------------------------------------------------------------
def csv_cell(value: Any) -> str | float:
    """A record value as the CLI CSV writes it: numbers stay numbers, the rest text.

    ``None`` -> ``""``, ``True``/``False`` -> ``"True"``/``"False"``, lists -> JSON.
    """
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        return json.dumps(np.asarray(value).tolist() if isinstance(value, np.ndarray) else list(value))
    return str(value)


def record_columns(records: Sequence[dict[str, Any]],
                   columns: Sequence[str] = RECORD_COLUMNS) -> list[str]:
    """Column order of the CLI CSV: ``columns`` first, then other keys as they appear."""
    cols = list(columns)
    for r in records:
        for k in r:
            if k not in cols:
                cols.append(k)
    return cols


def _as_records(result: Any) -> list[dict[str, Any]]:
    if isinstance(result, (FocusResult, StackResult)) or (
        isinstance(result, (list, tuple)) and result and isinstance(result[0], FocusResult)
    ):
        return [r.to_record() for r in _slices_of(result)]
    if isinstance(result, (list, tuple)) and all(isinstance(r, dict) for r in result):
        return list(result)
    raise FijiError("result: expected a FocusResult, StackResult or a list of records")


def results_table(
    result: Any,
    *,
    columns: Sequence[str] = RECORD_COLUMNS,
    table: Any = None,
) -> Any:
    """One row per image plane with the CLI CSV's columns, as an ImageJ ``ResultsTable``.

    Parameters
    ----------
    result : FocusResult, StackResult, list of FocusResult or list of record dicts
    columns : column names placed first (then any other record keys, as the CLI does)
    table : ij.measure.ResultsTable, optional
        Append to this table (e.g. ``ResultsTable.getResultsTable()``) instead of a new one.
    """
    records = _as_records(result)
    return _fill_table(records, record_columns(records, columns), table)


def _fill_table(records: Sequence[dict[str, Any]], cols: Sequence[str], table: Any) -> Any:
    ResultsTable = _jimport("ij.measure.ResultsTable")
    from jpype import JString

    rt = ResultsTable() if table is None else table
    for rec in records:
        rt.incrementCounter()
        for col in cols:
            v = csv_cell(rec.get(col))
            if isinstance(v, float):
                rt.addValue(col, v)
            else:
                rt.addValue(col, JString(v))
    return rt


def patch_records(result: FocusResult | StackResult | Sequence[FocusResult]) -> list[dict[str, Any]]:
    """One record per patch: plane identity, ``PATCH_COLUMNS``, probabilities and colour."""
    rows: list[dict[str, Any]] = []
    for res in _slices_of(result):
        s = res.source
        ident = {k: s.get(k) for k in ("file", "channel", "channel_index", "stain", "z_index", "z_um")}
        for p, prow in zip(patch_rois(res), res.patch_table()):
            rows.append({**ident, **prow, "color": p["hex"]})
    return rows


def patch_results_table(result: Any, *, table: Any = None) -> Any:
    """Per-patch ``ResultsTable`` (see :func:`patch_records`)."""
    from napari_focusqa.core.assess import PATCH_COLUMNS

    recs = patch_records(result)
    first = ("file", "channel", "channel_index", "stain", "z_index", "z_um", *PATCH_COLUMNS)
    return _fill_table(recs, record_columns(recs, first), table)


def table_to_records(rt: Any) -> list[dict[str, Any]]:
    """Read a ``ResultsTable`` back: numbers as float, text cells as str."""
    heads = [str(h) for h in rt.getHeadings() if str(h) not in (" ", "Label")]
    out = []
    for i in range(int(rt.size())):
        row: dict[str, Any] = {}
        for h in heads:
            col = rt.getColumnIndex(h)
            num = float(rt.getValueAsDouble(col, i))
            if np.isnan(num):
                row[h] = str(rt.getStringValue(h, i))
            else:
                row[h] = num
        out.append(row)
    return out


# --------------------------------------------------------------------------------------
# assess an ImagePlus
# --------------------------------------------------------------------------------------
@dataclass
class BridgeResult:
    """What :func:`assess_imageplus` produced.

    Attributes
    ----------
    result : FocusResult or StackResult
        A :class:`FocusResult` for a single 2D plane, otherwise a :class:`StackResult`.
    records : list of dict
        One CLI record per plane in CLI order (z outer, channel inner).
    table, patch_table, overlay : Java objects (``ResultsTable``, ``ResultsTable``, ``Overlay``)
    best_z_index : dict
        Best-focus slice (0-based) per channel index (stacks only).
    """

    result: FocusResult | StackResult
    records: list[dict[str, Any]]
    table: Any = None
    patch_table: Any = None
    overlay: Any = None
    best_z_index: dict[int, int] = field(default_factory=dict)


def assess_imageplus(
    imp: Any,
    model: Any = None,
    *,
    metrics: Sequence[str] = ("sf",),
    stains: Sequence[str] | None = None,
    channels: Sequence[int] | None = None,
    frame: int = 0,
    file: str | None = None,
    attach: bool = True,
    select_best: bool = True,
    legend: bool = True,
    show_table: bool = False,
) -> BridgeResult:
    """Assess an ImageJ image with the core and attach the overlay (and select best focus).

    Parameters
    ----------
    imp : ij.ImagePlus
        2D image, stack or hyperstack (8/16/32-bit).
    model : model id, card path, FocusModel or None
        ``None`` computes SF only (no patch rectangles).
    frame : int
        Time frame (0-based) of a time series to assess.
    file : str, optional
        Value of the ``file`` column (default: the image's file path, else its title).
    attach : bool
        Set the overlay on ``imp`` (replacing any overlay).
    select_best : bool
        For stacks, move ``imp`` to the best-focus slice of the current channel.
    show_table : bool
        Show the records as ImageJ's "Results" window (needs a display, not headless).

    Returns
    -------
    BridgeResult
    """
    from napari_focusqa.core.zstack import assess_stack

    data = from_imageplus(imp)
    nt = data.data.shape[0]
    if not 0 <= frame < nt:
        raise ImageError(f"frame: index {frame} out of range (0..{nt - 1})")
    label = file if file is not None else (data.path or data.metadata.get("title"))
    st = stains if stains is not None else data.stains
    stack = assess_stack(
        data.zcyx(frame), model, z_step_um=data.z_step_um, channel_names=data.channel_names,
        stains=st, channels=channels, metrics=metrics, source={"file": label},
    )
    if nt > 1:
        for c in stack.channels:
            for s in c.slices:
                s.source["t_index"] = frame
    nz = data.n_slices
    ordered = stack.planes()
    one = nz == 1 and len(stack.channels) == 1
    res: FocusResult | StackResult = stack.channels[0].slices[0] if one else stack
    records = [s.to_record() for s in ordered]
    out = BridgeResult(result=res, records=records)
    out.table = results_table(records)
    out.patch_table = patch_results_table(ordered)
    out.overlay = result_overlay(ordered, imp=imp, legend=legend)
    out.best_z_index = {c.channel: c.best_z_index for c in stack.channels} if nz > 1 else {}
    if attach:
        imp.setOverlay(out.overlay)
    if show_table:
        if session().headless:
            raise FijiError("show_table: ImageJ runs headless here; start it with mode='gui'")
        out.table.show("Results")
    if select_best and nz > 1:
        cur_c = int(imp.getChannel()) - 1
        best = out.best_z_index.get(cur_c, next(iter(out.best_z_index.values())))
        if imp.isHyperStack() or int(imp.getNChannels()) > 1 or int(imp.getNFrames()) > 1:
            imp.setPosition(cur_c + 1, best + 1, frame + 1)
        else:
            imp.setSlice(best + 1)
    return out


def records_equal(a: Iterable[dict[str, Any]], b: Iterable[dict[str, Any]], rtol: float = 1e-9) -> bool:
    """Compare two record lists cell by cell as CSV cells (numbers with ``rtol``)."""
    la, lb = list(a), list(b)
    if len(la) != len(lb):
        return False
    for ra, rb in zip(la, lb):
        for key in set(ra) | set(rb):
            va, vb = csv_cell(ra.get(key)), csv_cell(rb.get(key))
            if isinstance(va, float) and isinstance(vb, float):
                if not np.isclose(va, vb, rtol=rtol, atol=0):
                    return False
            elif va != vb:
                return False
    return True

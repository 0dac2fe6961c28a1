"""Depth of field from the optics, and optics read from a file's description.

Depth of field (DoF), the unit in which autofocus accuracy is reported:

- **from the optics** when the numerical aperture is known (Inoué / Shillaber):
  ``DoF = λ·n / NA² + n·e / (M·NA)`` where ``e/M`` is the pixel size referred to the
  sample (the second term is dropped when the pixel size is unknown). λ defaults to
  520 nm and ``n`` to 1.515 (oil) for NA > 1.0, 1.333 when "water" is mentioned, 1.0
  otherwise;
- **otherwise from the calibration curve**: ``DoF = FWHM / 2`` of the Moffat fit of the
  blur-score curve (its half width at half maximum): see
  :mod:`napari_focusqa.autofocus.calibrate`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from napari_focusqa.core.errors import FocusQAError

DEFAULT_WAVELENGTH_NM = 520.0


@dataclass(frozen=True)
class Optics:
    """Imaging optics (only ``na`` is required).

    ``assumed`` names the fields that were defaulted rather than read from the file, the
    configuration or the user (``wavelength_nm``, ``immersion_n``): good enough for a DoF,
    not for the calibration-free two-shot search, which refuses them.
    """

    na: float
    wavelength_nm: float = DEFAULT_WAVELENGTH_NM
    immersion_n: float = 1.0
    pixel_size_um: float | None = None
    assumed: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if not 0 < self.na < 1.8:
            raise FocusQAError(f"na: numerical aperture must be in (0, 1.8), got {self.na}")
        if self.na > self.immersion_n:
            raise FocusQAError(
                f"immersion_n: NA {self.na} needs an immersion index >= NA, got {self.immersion_n}"
            )
        if not 200 <= self.wavelength_nm <= 2000:
            raise FocusQAError(f"wavelength_nm: expected 200..2000 nm, got {self.wavelength_nm}")

    @property
    def dof_um(self) -> float:
        return depth_of_field_um(self.na, self.wavelength_nm, self.immersion_n, self.pixel_size_um)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["assumed"] = list(self.assumed)
        d["dof_um"] = round(self.dof_um, 6)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Optics:
        """Inverse of :meth:`to_dict` (extra keys such as ``dof_um`` are ignored)."""
        try:
            return cls(na=float(d["na"]),
                       wavelength_nm=float(d.get("wavelength_nm") or DEFAULT_WAVELENGTH_NM),
                       immersion_n=float(d.get("immersion_n") or 1.0),
                       pixel_size_um=(None if d.get("pixel_size_um") is None
                                      else float(d["pixel_size_um"])),
                       assumed=tuple(d.get("assumed") or ()))
        except (KeyError, TypeError, ValueError) as exc:
            raise FocusQAError(f"optics: malformed optics record ({exc})") from exc


def depth_of_field_um(
    na: float, wavelength_nm: float = DEFAULT_WAVELENGTH_NM, immersion_n: float = 1.0,
    pixel_size_um: float | None = None,
) -> float:
    """``λ·n/NA² + n·px/NA`` in µm (px = pixel size at the sample; term dropped if None)."""
    lam = wavelength_nm / 1000.0
    dof = lam * immersion_n / na**2
    if pixel_size_um:
        dof += immersion_n * pixel_size_um / na
    return float(dof)


def optics_from_info(info: str | None, pixel_size_um: float | None = None) -> Optics | None:
    """Parse NA / wavelength / immersion from a free-text description (ImageJ ``Info``).

    Recognises ``NA 1.45``, ``NA=0.8``, ``50x/1.2``, ``lambda 461nm``, ``emission 520 nm``,
    ``oil``, ``water``, ``glycerol``. Returns None when no NA is found.
    """
    if not info:
        return None
    text = str(info)
    m = re.search(r"\bNA\s*[=:]?\s*([0-9]*\.?[0-9]+)", text)
    if m is None:
        m = re.search(r"\d+\s*[xX×]\s*/\s*([0-9]*\.[0-9]+)", text)
    if m is None:
        return None
    na = float(m.group(1))
    wl = DEFAULT_WAVELENGTH_NM
    assumed = []
    w = re.search(r"(?:lambda|λ|emission|em\.?|wavelength)\s*[=:~]?\s*(\d{3,4})\s*nm", text,
                  re.IGNORECASE)
    if w is not None:
        wl = float(w.group(1))
    else:
        assumed.append("wavelength_nm")
    low = text.lower()
    if "oil" in low:
        n = 1.515
    elif "glycerol" in low:
        n = 1.47
    elif "water" in low:
        n = 1.333
    elif re.search(r"\b(air|dry)\b", low):
        n = 1.0
    else:
        n = (1.515 if na > 1.33 else 1.333) if na > 1.0 else 1.0
        assumed.append("immersion_n")
    try:
        return Optics(na=na, wavelength_nm=wl, immersion_n=n, pixel_size_um=pixel_size_um,
                      assumed=tuple(assumed))
    except FocusQAError:
        return None


def optics_for(microscope: Any, *, na: float | None = None,
               wavelength_nm: float | None = None, immersion_n: float | None = None,
               pixel_size_um: float | None = None) -> Optics | None:
    """The microscope's optics (file metadata / configuration) with any of the given
    fields overriding (the CLI's ``--na/--wavelength-nm/--immersion-n/--pixel-size-um``,
    the autofocus widget's optics fields; ``None`` = not given, and a pixel size of 0
    too).

    Fields neither given nor known are defaulted and marked ``assumed`` (enough for a
    depth of field, refused by the two-shot search). None when no NA is known.
    """
    base = getattr(microscope, "optics", None)
    na = na if na is not None else getattr(base, "na", None)
    if na is None:
        return None
    assumed = set(getattr(base, "assumed", ()) if base is not None else
                  ("wavelength_nm", "immersion_n"))
    wl, n = getattr(base, "wavelength_nm", None), getattr(base, "immersion_n", None)
    if wavelength_nm is not None:
        wl = wavelength_nm
        assumed.discard("wavelength_nm")
    if immersion_n is not None:
        n = immersion_n
        assumed.discard("immersion_n")
    if wl is None:
        wl = DEFAULT_WAVELENGTH_NM
        assumed.add("wavelength_nm")
    if n is None:
        n = 1.515 if na > 1.33 else 1.333 if na > 1 else 1.0
        assumed.add("immersion_n")
    px = pixel_size_um or getattr(base, "pixel_size_um", None)
    if not px:
        try:
            px = (microscope.info() or {}).get("pixel_size_um")
        except Exception:  # a device that cannot say: the pixel size stays unknown
            px = None
    return Optics(na=float(na), wavelength_nm=float(wl), immersion_n=float(n),
                  pixel_size_um=px, assumed=tuple(sorted(assumed)))

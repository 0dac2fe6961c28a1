"""Fiji side: install the macros, run them in a real ImageJ (``java -jar ij.jar -batch``
under Xvfb) on a real z-stack, and check the saved Results CSV and overlay TIFF.

No JVM is started in the pytest process: ImageJ runs as a child process, exactly as a
user's ``focusqa fiji run-macro`` would. Java tests skip without Java locally and fail
when ``FOCUSQA_REQUIRE_JAVA=1`` (CI).
"""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import require_shared

from napari_focusqa.cli import main
from napari_focusqa.core.assess import RECORD_COLUMNS
from napari_focusqa.core.colors import EMPTY_RGB, level_colors_uint8, patch_colors_uint8

DECONWOLF = "deconwolf_dapi_widefield_zstack.tif"


def _java():
    from fiji_bridge.testing import require_display, require_java

    require_java()
    require_display()


def _installed(tmp_path: Path) -> Path:
    ijdir = tmp_path / "ImageJ"
    (ijdir / "plugins").mkdir(parents=True)
    assert main(["fiji", "install", str(ijdir)]) == 0
    return ijdir


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as fh:
        r = csv.DictReader(fh)
        return list(r.fieldnames or []), list(r)


# --------------------------------------------------------------------------------------
# install / uninstall (no Java needed)
# --------------------------------------------------------------------------------------
def test_install_is_an_update_site_plus_config(tmp_path, capsys):
    """Macros are the update site's files (the same for every Python); only the config
    names the Python, so updating FocusQA or the macros needs no reinstall of the other."""
    from fiji_bridge.install import read_config

    ijdir = _installed(tmp_path)
    plug = ijdir / "plugins" / "FocusQA"
    files = sorted(p.name for p in plug.iterdir())
    assert files == ["Assess_Focus.ijm", "Focus_Curves.ijm", "focusqa-install.json", "focusqa.cfg"]
    assert sorted(p.name for p in (ijdir / "macros" / "FocusQA").iterdir()) == [
        "Assess_Focus.ijm", "Focus_Curves.ijm"]
    assert read_config(ijdir) == {"python": os.path.abspath(sys.executable)}
    text = (plug / "Assess_Focus.ijm").read_text()
    assert "@@" not in text and sys.executable not in text
    assert "function fqLoadOverlay(" in text and "Dialog.create(title)" in text
    assert "run(\"Assess Focus\"" in capsys.readouterr().out
    # the update site has byte-identical macros, and no config
    site = tmp_path / "site"
    assert main(["fiji", "update-site", str(site)]) == 0
    site_files = sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file())
    assert site_files == ["macros/FocusQA/Assess_Focus.ijm", "macros/FocusQA/Focus_Curves.ijm",
                          "plugins/FocusQA/Assess_Focus.ijm", "plugins/FocusQA/Focus_Curves.ijm"]
    for rel in site_files:
        assert (site / rel).read_bytes() == (ijdir / rel).read_bytes(), rel
    # another Python: the same macros, another config
    other = tmp_path / "ImageJ2"
    (other / "plugins").mkdir(parents=True)
    assert main(["fiji", "install", str(other), "--python", "/bin/sh"]) == 0
    assert read_config(other) == {"python": "/bin/sh"}
    for rel in site_files:
        assert (other / rel).read_bytes() == (ijdir / rel).read_bytes(), rel
    manifest = json.loads((plug / "focusqa-install.json").read_text())
    assert len(manifest["files"]) == 5 and "plugins/FocusQA/focusqa.cfg" in manifest["files"]
    assert main(["fiji", "install", str(ijdir), "--uninstall"]) == 0
    assert not plug.exists() and not (ijdir / "macros" / "FocusQA").exists()
    assert (ijdir / "plugins").is_dir()  # the user's folder stays


def test_install_rejects_non_imagej_folder(tmp_path, capsys):
    assert main(["fiji", "install", str(tmp_path)]) == 2
    assert "FIJI_OR_IMAGEJ_DIR" in capsys.readouterr().err
    assert main(["fiji", "install", str(tmp_path / "missing")]) == 2


def test_run_macro_rejects_missing_macro(tmp_path, capsys):
    assert main(["fiji", "run-macro", str(tmp_path / "none.ijm")]) == 2
    assert "MACRO" in capsys.readouterr().err


# --------------------------------------------------------------------------------------
# the data exchange the macros use (no Java needed)
# --------------------------------------------------------------------------------------
def test_assess_for_macro_files(tmp_path, sharpness_model):
    from napari_focusqa.core.zstack import assess_stack
    from napari_focusqa.io import read_image

    path = require_shared(DECONWOLF)
    out = tmp_path / "x"
    out.mkdir()
    rc = main(["fiji", "assess-for-macro", str(path), "--out", str(out),
               "--model", str(sharpness_model), "--label", "my image"])
    assert rc == 0
    assert (out / "status.txt").read_text().split("\t")[0] == "ok"
    lines = (out / "results.tsv").read_text().splitlines()
    heads = lines[0].split("\t")
    assert heads[: len(RECORD_COLUMNS)] == list(RECORD_COLUMNS)
    assert len(lines) == 41
    assert lines[1].split("\t")[0] == "my image"
    img = read_image(path)
    ref = assess_stack(img.zcyx(), str(sharpness_model), z_step_um=img.z_step_um)
    patches = [ln.split("\t") for ln in (out / "patches.tsv").read_text().splitlines()[1:]]
    assert len(patches) == 40 * 6
    for z, s in enumerate(ref.channels[0].slices):
        cols = patch_colors_uint8(s.patch_level, s.patch_certainty, s.empty, 11).reshape(-1, 3)
        want = sorted("#{:02x}{:02x}{:02x}".format(*c) for c in cols)
        assert sorted(p[10] for p in patches if p[1] == str(z + 1)) == want
    bl = (out / "best.tsv").read_text().splitlines()
    best = dict(zip(bl[0].split("\t"), bl[1].split("\t")))
    c0 = ref.channels[0]
    assert int(best["best_z_index"]) == c0.best_z_index
    assert int(best["best_z_index_sf"]) == c0.best_z_index_sf and abs(c0.best_z_index_sf - 19) <= 1
    assert float(best["best_z_confidence"]) == pytest.approx(c0.best_z_confidence, abs=1e-6)
    legend = (out / "legend.tsv").read_text().splitlines()[1:]
    assert len(legend) == 12 and legend[-1] == "\t#999999"  # + grey: no structure


def test_assess_for_macro_planes_grey_empty_patches_and_verdicts(tmp_path, sharpness_model):
    """Independent fields (planes mode): every verdict as the core gives it, and the
    patches without structure grey in the overlay table."""
    from napari_focusqa.pipeline import assess_file

    path = require_shared("bbbc006_hoechst_infocus_9fields.tif")
    out = tmp_path / "x"
    out.mkdir()
    assert main(["fiji", "assess-for-macro", str(path), "--out", str(out), "--mode", "planes",
                 "--model", str(sharpness_model)]) == 0
    ref = assess_file(path, str(sharpness_model), "planes")
    lines = (out / "results.tsv").read_text().splitlines()
    heads = lines[0].split("\t")
    rows = [dict(zip(heads, ln.split("\t"))) for ln in lines[1:]]
    assert [r["verdict"] for r in rows] == [r.verdict for r in ref]
    assert [float(r["structured_fraction"]) for r in rows] == pytest.approx(
        [r.structured_fraction for r in ref], abs=1e-6)  # records keep 6 decimals
    assert (out / "best.tsv").read_text().splitlines()[1:] == []  # no z-stack, no best slice
    patches = [ln.split("\t") for ln in (out / "patches.tsv").read_text().splitlines()[1:]]
    grey = "#{:02x}{:02x}{:02x}".format(*(round(v * 255) for v in EMPTY_RGB))
    n_empty = sum(int(r.empty.sum()) for r in ref)
    assert 0 < n_empty < len(patches)
    assert sum(p[9] == "True" for p in patches) == n_empty
    assert all((p[10] == grey) == (p[9] == "True") for p in patches)
    assert all(p[11].endswith("no structure") == (p[9] == "True") for p in patches)


def test_assess_for_macro_reports_errors_in_status(tmp_path, capsys):
    out = tmp_path / "x"
    out.mkdir()
    rc = main(["fiji", "assess-for-macro", str(tmp_path / "missing.tif"), "--out", str(out)])
    assert rc == 2
    status = (out / "status.txt").read_text()
    assert status.startswith("error\t") and "missing.tif" in status
    assert "FocusQA error:" in capsys.readouterr().out


def test_assess_for_macro_stain_override_and_protocol(tmp_path, capsys):
    """Stains from the dialog reach the core; a macro of another protocol is refused."""
    path = require_shared(DECONWOLF)
    out = tmp_path / "x"
    out.mkdir()
    base = ["fiji", "assess-for-macro", str(path), "--out", str(out), "--model", "none"]
    assert main([*base, "--stains", "auto"]) == 0
    rows = (out / "results.tsv").read_text().splitlines()
    col = rows[0].split("\t").index("stain")
    assert {r.split("\t")[col] for r in rows[1:]} == {"nucleus"}  # from the DAPI name
    assert main([*base, "--stains", "actin"]) == 0
    rows = (out / "results.tsv").read_text().splitlines()
    assert {r.split("\t")[col] for r in rows[1:]} == {"actin"}
    capsys.readouterr()
    assert main([*base, "--stains", "glitter"]) == 2
    assert "stains: unknown stain 'glitter'" in capsys.readouterr().out
    assert main([*base, "--stains", "actin,nucleus"]) == 2
    assert "expected 1 (one per channel)" in capsys.readouterr().out
    assert main([*base, "--protocol", "1"]) == 2
    status = (out / "status.txt").read_text()
    assert status.startswith("error\t--protocol") and "update the macros" in status


# --------------------------------------------------------------------------------------
# real ImageJ
# --------------------------------------------------------------------------------------
@pytest.mark.java
def test_run_macro_passes_arguments_and_checks_outputs(tmp_path):
    _java()
    target = tmp_path / "arg.txt"
    macro = tmp_path / "m.ijm"
    macro.write_text('File.saveString("arg=" + getArgument(), "' + str(target) + '");\n')
    assert main(["fiji", "run-macro", str(macro), "hello world", "--expect", str(target),
                 "--timeout", "120"]) == 0
    assert target.read_text() == "arg=hello world"
    # the same macro cannot produce an output it never writes: ImageJ exits 0, we don't
    assert main(["fiji", "run-macro", str(macro), "x", "--expect", str(tmp_path / "no.csv"),
                 "--timeout", "120"]) == 1


@pytest.mark.java
def test_assess_focus_macro_end_to_end(tmp_path, sharpness_model, capsys):
    """open a real stack, run the installed macros, save Results CSV + overlay TIFF."""
    from fiji_bridge.roi import read_overlay
    from napari_focusqa.core.zstack import assess_stack
    from napari_focusqa.io import read_image

    _java()
    path = require_shared(DECONWOLF)
    ijdir = _installed(tmp_path)
    res_csv, ov_tif = tmp_path / "results.csv", tmp_path / "overlay.tif"
    plot_png, curves_csv = tmp_path / "curves.png", tmp_path / "curves.csv"
    macro = tmp_path / "user.ijm"
    macro.write_text(
        f'open("{path}");\n'
        f'run("Assess Focus", "model=[{sharpness_model}] results=[{res_csv}] save=[{ov_tif}]");\n'
        f'print("current slice " + getSliceNumber());\n'
        f'run("Focus Curves", "save=[{plot_png}] csv=[{curves_csv}]");\n'
    )
    rc = main(["fiji", "run-macro", str(macro), "--imagej-dir", str(ijdir),
               "--expect", str(res_csv), "--expect", str(ov_tif), "--expect", str(plot_png),
               "--timeout", "300"])
    log = capsys.readouterr().out
    assert rc == 0, log

    # --- Results CSV equals the CLI CSV (ImageJ keeps 3 decimals) ----------------------
    cli_csv = tmp_path / "cli.csv"
    assert main(["assess", str(path), "--model", str(sharpness_model), "--csv", str(cli_csv)]) == 0
    cli_cols, cli_rows = _read_csv(cli_csv)
    ij_cols, ij_rows = _read_csv(res_csv)
    assert ij_cols[0].strip() == ""  # ImageJ's row-number column
    # both carry the stack context of a z-stack (stack_sf_ratio, stack-context verdicts)
    assert "stack_sf_ratio" in cli_cols and sorted(ij_cols[1:]) == sorted(cli_cols)
    assert len(ij_rows) == len(cli_rows) == 40
    zs = tmp_path / "zstack.json"
    assert main(["zstack", str(path), "--model", str(sharpness_model), "--json", str(zs)]) == 0
    assert [r["verdict"] for r in ij_rows] == json.loads(zs.read_text())["channels"][0]["verdict"]
    for got, want in zip(ij_rows, cli_rows):
        for col in cli_cols:
            g, w = got[col], want[col]
            if col == "file":
                assert os.path.realpath(g) == os.path.realpath(w)
            elif col == "probabilities":
                assert json.loads(g) == pytest.approx(json.loads(w), abs=1e-9)
            else:
                try:
                    wf = float(w)
                except ValueError:
                    assert g == w, col
                else:
                    assert float(g) == pytest.approx(wf, abs=5.1e-4, rel=1e-6), col

    # --- best slice ---------------------------------------------------------------------
    sf = np.array([float(r["sf"]) for r in ij_rows])
    assert abs(int(np.argmax(sf)) - 19) <= 1  # the documented focus
    with tifffile.TiffFile(ov_tif) as tif:
        info = tif.imagej_metadata.get("Info", "")
        saved = tif.asarray()
    best = int(info.split("focusqa.best_z_index.c0=")[1].split()[0])
    img = read_image(path)
    ref = assess_stack(img.zcyx(), str(sharpness_model), z_step_um=img.z_step_um)
    assert best == ref.channels[0].best_z_index  # the core's fused answer for this model
    assert f"current slice {best + 1}" in log
    np.testing.assert_array_equal(saved, tifffile.imread(path))  # pixels untouched

    # --- overlay in the TIFF equals an independent Python assessment ---------------------
    rois = read_overlay(ov_tif)
    patches = [r for r in rois if r.name.startswith("focusqa patch")]
    assert len(patches) == 40 * 6
    for z, s in enumerate(ref.channels[0].slices):
        boxes = s.grid.boxes().reshape(-1, 4)
        cols = patch_colors_uint8(s.patch_level, s.patch_certainty, s.empty, 11).reshape(-1, 3)
        want = sorted((int(b[1]) + 1, int(b[0]) + 1, int(b[3] - b[1]) - 2, int(b[2] - b[0]) - 2,
                       tuple(int(v) for v in c)) for b, c in zip(boxes, cols))
        got = sorted((r.x, r.y, r.width, r.height, r.stroke_rgb)
                     for r in patches if r.position == z + 1)
        assert got == want, f"slice {z}"
    legend = [r for r in rois if r.name.startswith("focusqa legend level")]
    assert len(legend) == 11 and all(r.position == 0 for r in legend)
    full = level_colors_uint8(np.arange(11), np.ones(11), 11)
    assert [r.fill_rgb for r in legend] == [tuple(int(v) for v in c) for c in full]
    grey = [r for r in rois if r.name == "focusqa legend no structure"]
    assert len(grey) == 1 and grey[0].fill_rgb == tuple(round(v * 255) for v in EMPTY_RGB)
    assert {"verdict", "structured_fraction"} <= set(ij_cols)

    # --- Focus Curves ----------------------------------------------------------------------
    _, curves = _read_csv(curves_csv)
    assert len(curves) == 40
    assert [float(c["sf"]) for c in curves] == pytest.approx(ref.channels[0].sf.tolist(), rel=1e-6)
    assert plot_png.stat().st_size > 2000
    assert f"SF peak at slice {ref.channels[0].best_z_index_sf + 1}" in log


@pytest.mark.java
def test_dialog_run_is_recorded_and_replays_headless(tmp_path, sharpness_model, capsys):
    """A user fills the real "Assess Focus" and "Focus Curves" dialogs in an ImageJ GUI
    (Xvfb) with the macro Recorder open; the recorded macro, replayed by a headless batch
    ImageJ, gives the same Results table and curves table, byte for byte."""
    import subprocess

    _java()
    path = require_shared(DECONWOLF)
    ijdir = _installed(tmp_path)
    capsys.readouterr()
    first = tmp_path / "dialog results.csv"  # a space: the Recorder must bracket it
    curves_first = tmp_path / "curves.csv"
    spec = {
        "imagej_dir": str(ijdir), "image": str(path),
        "runs": [
            {"command": "Assess Focus",
             # string fields in dialog order: model, results, patches, save, flatten
             "strings": [str(sharpness_model), str(first)],
             "choices": ["actin"],  # stain of channel 1 (auto would say nucleus: DAPI)
             "done_marker": "plane(s) of"},
            {"command": "Focus Curves",
             "strings": [None, None, str(curves_first)],  # model, save (plot), csv
             "done_marker": "SF peak at slice"},
        ],
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    out_json = tmp_path / "recorded.json"
    cmd = [sys.executable, "-m", "fiji_bridge.testing", "record", str(tmp_path / "spec.json"),
           str(out_json)]
    if not os.environ.get("DISPLAY"):
        cmd = ["xvfb-run", "-a", *cmd]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert p.returncode == 0, p.stdout + p.stderr
    got = json.loads(out_json.read_text())
    assert "FocusQA error" not in got["log"], got["log"]
    # the Recorder holds the window selection and the command, not the macro's inner
    # steps (Duplicate, Clear Results, ...)
    recorded = got["recorded"]
    runs = [ln for ln in recorded.splitlines() if ln.startswith("run(")]
    assert len(runs) == 2, recorded
    line = runs[0]
    assert runs[1].startswith('run("Focus Curves", "model=none stain_c1=auto ')
    assert f"csv={curves_first}" in runs[1]
    assert line.startswith('run("Assess Focus", "') and line.endswith('");')
    assert f"model={sharpness_model}" in line
    assert "stain_c1=actin" in line and f"results=[{first}]" in line
    _, rows = _read_csv(first)
    assert len(rows) == 40 and {r["stain"] for r in rows} == {"actin"}

    # replay the recorded line headless, writing the Results elsewhere
    second = tmp_path / "replayed.csv"
    replay = tmp_path / "replay.ijm"
    curves_second = tmp_path / "curves_replayed.csv"
    replay.write_text(f'open("{path}");\n' + recorded.replace(f"[{first}]", f"[{second}]")
                      .replace(f"csv={curves_first}", f"csv={curves_second}"))
    rc = main(["fiji", "run-macro", str(replay), "--imagej-dir", str(ijdir),
               "--expect", str(second), "--expect", str(curves_second), "--timeout", "300"])
    assert rc == 0, capsys.readouterr().out
    assert second.read_bytes() == first.read_bytes()
    assert curves_second.read_bytes() == curves_first.read_bytes()
    assert len(_read_csv(curves_first)[1]) == 40


@pytest.mark.java
def test_macro_errors_reach_the_imagej_log(tmp_path, capsys):
    import glob
    import tempfile

    _java()
    ijdir = _installed(tmp_path)
    exchange = os.path.join(tempfile.gettempdir(), "focusqa-*")
    before = set(glob.glob(exchange))
    out = tmp_path / "never.csv"
    bad_model = tmp_path / "nope" / "card.json"
    m1 = tmp_path / "bad_model.ijm"
    m1.write_text('newImage("blank", "16-bit ramp", 120, 100, 1);\n'
                  f'run("Assess Focus", "model=[{bad_model}] results=[{out}]");\n')
    rc = main(["fiji", "run-macro", str(m1), "--imagej-dir", str(ijdir), "--expect", str(out),
               "--timeout", "120"])
    cap = capsys.readouterr()
    assert rc == 1
    assert "FocusQA error: model: no model card found" in cap.out
    assert str(bad_model) in cap.out
    assert not out.exists()
    m2 = tmp_path / "no_image.ijm"
    installed = ijdir / "macros" / "FocusQA" / "Assess_Focus.ijm"
    m2.write_text(f'runMacro("{installed}", "model=none");\n')
    rc = main(["fiji", "run-macro", str(m2), "--imagej-dir", str(ijdir), "--timeout", "120"])
    cap = capsys.readouterr()
    assert rc == 1
    assert "FocusQA error: no image is open" in cap.out
    # the temporary exchange folders are removed on the error paths too
    assert set(glob.glob(exchange)) <= before


@pytest.mark.java
def test_runmacro_argument_fills_the_dialog_fields(tmp_path, capsys):
    """runMacro(path, "key=value ...") gives the same keys as the dialog (no dialog shown),
    here on a single 2D plane (planes mode, no best slice)."""
    _java()
    ijdir = _installed(tmp_path)
    out = tmp_path / "one plane.csv"
    installed = ijdir / "macros" / "FocusQA" / "Assess_Focus.ijm"
    m = tmp_path / "m.ijm"
    m.write_text('newImage("ramp", "16-bit ramp", 160, 120, 1);\n'
                 f'runMacro("{installed}", "model=none stain_c1=actin results=[{out}]");\n')
    rc = main(["fiji", "run-macro", str(m), "--imagej-dir", str(ijdir), "--expect", str(out),
               "--timeout", "120"])
    assert rc == 0, capsys.readouterr().out
    cols, rows = _read_csv(out)
    assert len(rows) == 1 and rows[0]["file"] == "ramp" and rows[0]["stain"] == "actin"
    assert rows[0]["model"] == "" and "stack_sf_ratio" not in cols  # SF only, one plane


@pytest.mark.java
def test_hung_macro_is_stopped_with_its_imagej_and_xvfb(tmp_path, capsys):
    """A macro error opens a modal dialog that never closes headless: run-macro stops
    ImageJ (and xvfb-run's Xvfb) after --timeout and leaves no process behind."""
    _java()
    m = tmp_path / "broken.ijm"
    m.write_text("x = ;\n")  # syntax error -> ImageJ's error dialog
    rc = main(["fiji", "run-macro", str(m), "--timeout", "8"])
    assert rc == 1
    assert "did not finish within 8 s" in capsys.readouterr().err
    left = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(m).encode() in cmdline.read_bytes():
                left.append(cmdline.parent.name)
        except OSError:
            continue
    assert left == []


@pytest.mark.java
def test_imagej_command_uses_xvfb_only_without_display(tmp_path):
    from fiji_bridge.runner import imagej_command

    _java()
    m = tmp_path / "m.ijm"
    m.write_text("")
    no_display = imagej_command(m, "a b", imagej_dir=tmp_path, display="")
    if sys.platform.startswith("linux"):
        assert Path(no_display[0]).name == "xvfb-run" and no_display[1] == "-a"
    assert no_display[-3:] == ["-batch", str(m.resolve()), "a b"]
    assert f"-Dplugins.dir={tmp_path.resolve()}" in no_display
    with_display = imagej_command(m, None, display=":5")
    assert Path(with_display[0]).name.startswith("java") and with_display[-1] == str(m.resolve())


@pytest.mark.java
def test_macro_reports_a_broken_python(tmp_path, capsys, monkeypatch):
    """The macros read the Python from the config (or $FOCUSQA_PYTHON) at run time: a
    moved venv is fixed by editing the config, no reinstall; a broken one shows up in the
    Log, never as a silent no-op."""
    from fiji_bridge.install import config_path, config_text

    _java()
    false = "/bin/false"
    if not Path(false).is_file():
        pytest.skip("needs /bin/false")
    ijdir = _installed(tmp_path)
    m = tmp_path / "m.ijm"
    out_csv = tmp_path / "r.csv"
    m.write_text('newImage("blank", "8-bit ramp", 100, 100, 1);\n'
                 f'run("Assess Focus", "model=none results=[{out_csv}]");\n')
    run = ["fiji", "run-macro", str(m), "--imagej-dir", str(ijdir), "--timeout", "120"]
    config_path(ijdir).write_text(config_text(false))  # the venv "moved"
    assert main(run) == 1
    out = capsys.readouterr().out
    assert "FocusQA error: the FocusQA command did not run" in out and false in out
    config_path(ijdir).write_text(config_text(sys.executable))  # fixed by the config alone
    assert main([*run, "--expect", str(out_csv)]) == 0
    capsys.readouterr()
    monkeypatch.setenv("FOCUSQA_PYTHON", false)  # the environment variable wins
    assert main(run) == 1
    assert f"command: {false} -m fiji_bridge assess-for-macro" in capsys.readouterr().out

// FocusQA "Assess Focus": patchwise focus quality of the current image or stack.
//
// Draws one rectangle per patch (hue = defocus level, red = in focus ... magenta = most
// defocused; darker = less certain; grey = no structure) as an overlay, fills the Results
// table with one row per plane (the same columns as `focusqa assess --csv`) and selects
// the best-focus slice.
//
// A dialog asks for the options; the macro Recorder records them, and a macro can give
// them instead: run("Assess Focus", "model=fqa-levels results=[out.csv]").
//   model=ID|CARD.json|none   model (default: the default installed model; none = SF only)
//   stain_c1=auto|nucleus|... stain class of channel 1 (auto = from the channel name), ...
//   results=[path.csv]        save the Results table
//   patches=[path.csv]        save the per-patch table
//   save=[path.tif]           save the image with its overlay (renames the window)
//   flatten=[path.png]        save a flattened RGB picture of the current slice
//   flatten_scale=N           enlarge that picture N times (default 1)
//   keep                      keep the temporary exchange folder
//   open=[path]               (macro only) open this image first
// The Python that FocusQA runs in comes from plugins/FocusQA/focusqa.cfg (`focusqa fiji
// install`) or $FOCUSQA_PYTHON, so these files never change with the Python environment.
var FQ_VERSION = "@@FOCUSQA_VERSION@@";
var FQ_PROTOCOL = "@@FOCUSQA_PROTOCOL@@";
var FQ_STAINS = "@@FOCUSQA_STAINS@@";
var FQ_TMP = "";
var FQ_KEEP = false;

openPath = fqOpt(fqOptions(), "open", "");
if (openPath != "") open(openPath);
if (nImages == 0) fqFail("no image is open (open one, or pass open=[path])");
if (bitDepth() == 24) fqFail("'" + getTitle() + "' is an RGB image; split its channels first (Image > Color > Split Channels)");
Stack.getDimensions(width, height, nc, nz, nt);
// the dialog's fields: model, one stain per channel (Array.concat with a one-element
// array returned by a function loses its text in ImageJ 1.53t, so append one by one)
labels = newArray("Model"); kinds = newArray("string"); defs = newArray("default"); items = newArray("");
for (c = 1; c <= nc; c++) {
	labels = Array.concat(labels, "Stain_c" + c); kinds = Array.concat(kinds, "choice");
	defs = Array.concat(defs, "auto"); items = Array.concat(items, FQ_STAINS);
}
labels = Array.concat(labels, newArray("Results (CSV)", "Patches (CSV)", "Save (TIFF with overlay)", "Flatten (PNG of this slice)", "Flatten_scale", "Keep (exchange files, for debugging)"));
kinds = Array.concat(kinds, newArray("file", "file", "file", "file", "number", "check"));
defs = Array.concat(defs, newArray("", "", "", "", "1", "0"));
items = Array.concat(items, newArray("", "", "", "", "", ""));
msg = "FocusQA " + FQ_VERSION + ": focus quality of '" + getTitle() + "'\nModel: default, none (SF only), a model id or a card .json;\nstain auto = from the channel name. Outputs are optional.";
v = fqDialog("Assess Focus", msg, labels, kinds, defs, items);
model = v[0];
if (model == "") model = "default";
stains = "";
for (c = 1; c <= nc; c++) {
	if (c > 1) stains = stains + ",";
	stains = stains + v[c];
}
resultsPath = v[nc + 1];
patchesPath = v[nc + 2];
savePath = v[nc + 3];
flattenPath = v[nc + 4];
flattenScale = parseFloat(v[nc + 5]);
keep = (v[nc + 6] == "1");
FQ_KEEP = keep;
py = fqPython();

id = getImageID();
title = getTitle();
label = getInfo("image.directory") + getInfo("image.filename");
if (getInfo("image.filename") == "") label = title;
Stack.getPosition(c0, z0, t0);
mode = "planes";
if (nz > 1) mode = "stack";

tmp = fqTempDir();
imgPath = tmp + "image.tif";
fqExportImage(imgPath);
cmd = py + " -m fiji_bridge assess-for-macro " + imgPath + " --out " + tmp + " --model " + model + " --stains " + stains + " --mode " + mode;
showStatus("FocusQA: assessing " + title + " ...");
if (nt > 1) output = exec(py, "-m", "fiji_bridge", "assess-for-macro", imgPath, "--out", tmp, "--model", model, "--label", label, "--stains", stains, "--mode", mode, "--protocol", FQ_PROTOCOL, "--frame", "" + (t0 - 1));
else output = exec(py, "-m", "fiji_bridge", "assess-for-macro", imgPath, "--out", tmp, "--model", model, "--label", label, "--stains", stains, "--mode", mode, "--protocol", FQ_PROTOCOL);
modelUsed = fqCheckStatus(tmp, cmd, output);

selectImage(id);
rows = fqLoadResults(tmp + "results.tsv");
if (Overlay.size > 0) Overlay.remove;  // the overlay is replaced, not appended to
nPatches = fqLoadOverlay(tmp + "patches.tsv", nc, nz, nt);
if (nPatches > 0) fqLoadLegend(tmp + "legend.tsv", width);
if (nPatches == 0) print("FocusQA: no model used (SF only), so no patch rectangles; install a model or pass model=ID");

// best-focus slice per channel
best = fqLines(tmp + "best.tsv");
bh = split(best[0], "(\t)");
info = getMetadata("Info");
bestHere = -1;
for (i = 1; i < best.length; i++) {
	if (best[i] == "") continue;
	f = fqCells(best[i], bh.length);
	ci = parseInt(f[0]);
	bz = parseInt(f[2]);
	um = "";
	if (f[3] != "") um = " = " + f[3] + " um";
	why = "";  // with a model: the fused answer, its confidence and the SF peak
	if (f[4] != "") why = "; confidence " + f[6] + ", SF peak z index " + f[5] + ", model z index " + f[4];
	if (nz > 1) print("FocusQA: " + title + " channel " + (ci + 1) + " (" + f[1] + "): best focus at slice " + (bz + 1) + " (z index " + bz + um + why + ")");
	info = info + "\nfocusqa.best_z_index.c" + ci + "=" + bz;
	if (ci == c0 - 1) bestHere = bz;
}
if (nz > 1) {
	setMetadata("Info", info);
	if (bestHere >= 0) Stack.setPosition(c0, bestHere + 1, t0);
}
print("FocusQA: " + rows + " plane(s) of '" + title + "' assessed, model " + modelUsed + ", " + nPatches + " patch rectangles");

if (resultsPath != "") saveAs("Results", resultsPath);
if (patchesPath != "") ok = File.copy(tmp + "patches.csv", patchesPath);
if (savePath != "") saveAs("Tiff", savePath);
if (flattenPath != "") {
	run("Flatten", "slice");
	if (flattenScale != 1) {
		run("Size...", "width=" + round(getWidth() * flattenScale) + " height=" + round(getHeight() * flattenScale) + " interpolation=None");
	}
	saveAs("PNG", flattenPath);
	close();
	selectImage(id);
}
if (!keep) fqDeleteDir(tmp);
else print("FocusQA: exchange files kept in " + tmp);

// FocusQA "Assess Focus": patchwise focus quality of the current image or stack.
//
// Draws one rectangle per patch (hue = defocus level, red = in focus ... magenta = most
// defocused; darker = less certain) as an overlay, fills the Results table with one row
// per plane (the same columns as `focusqa assess --csv`) and selects the best-focus slice.
//
// Options (run("Assess Focus", "...") or runMacro(path, "...")):
//   model=ID|CARD.json|none   model (default: the default installed model; none = SF only)
//   open=[path]               open this image first
//   results=[path.csv]        save the Results table
//   patches=[path.csv]        save the per-patch table
//   save=[path.tif]           save the image with its overlay (renames the window)
//   flatten=[path.png]        save a flattened RGB picture of the current slice
//   flatten_scale=N           enlarge that picture N times (default 1)
//   keep                      keep the temporary exchange folder
// Installed by `focusqa fiji install`; the Python below is the one FocusQA runs in.
var FQ_PYTHON = "@@FOCUSQA_PYTHON@@";
var FQ_VERSION = "@@FOCUSQA_VERSION@@";
var FQ_TMP = "";
var FQ_KEEP = false;

args = fqOptions();
model = fqOpt(args, "model", "default");
openPath = fqOpt(args, "open", "");
resultsPath = fqOpt(args, "results", "");
patchesPath = fqOpt(args, "patches", "");
savePath = fqOpt(args, "save", "");
flattenPath = fqOpt(args, "flatten", "");
flattenScale = parseFloat(fqOpt(args, "flatten_scale", "1"));
keep = fqFlag(args, "keep");
FQ_KEEP = keep;

if (openPath != "") open(openPath);
if (nImages == 0) fqFail("no image is open (open one, or pass open=[path])");
if (bitDepth() == 24) fqFail("'" + getTitle() + "' is an RGB image; split its channels first (Image > Color > Split Channels)");
id = getImageID();
title = getTitle();
label = getInfo("image.directory") + getInfo("image.filename");
if (getInfo("image.filename") == "") label = title;
Stack.getDimensions(width, height, nc, nz, nt);
Stack.getPosition(c0, z0, t0);

tmp = fqTempDir();
imgPath = tmp + "image.tif";
fqExportImage(imgPath);
cmd = FQ_PYTHON + " -m napari_focusqa fiji assess-for-macro " + imgPath + " --out " + tmp + " --model " + model + " --frame " + (t0 - 1);
showStatus("FocusQA: assessing " + title + " ...");
output = exec(FQ_PYTHON, "-m", "napari_focusqa", "fiji", "assess-for-macro", imgPath, "--out", tmp, "--model", model, "--label", label, "--frame", "" + (t0 - 1));
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
	if (nz > 1) print("FocusQA: " + title + " channel " + (ci + 1) + " (" + f[1] + "): best focus at slice " + (bz + 1) + " (z index " + bz + um + ")");
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

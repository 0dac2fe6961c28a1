// FocusQA "Focus Curves": spatial frequency (SF) vs z per channel of the current stack as an
// ImageJ Plot, best-focus slice per channel marked with a vertical line (the same numbers as `focusqa zstack`).
//
// Options (run("Focus Curves", "...") or runMacro(path, "...")):
//   model=ID|CARD.json|none   also compute the model's expected level per slice (default none)
//   open=[path]               open this image first
//   save=[path.png]           save the plot as PNG
//   csv=[path.csv]            save the curves table
//   keep                      keep the temporary exchange folder
// Installed by `focusqa fiji install`; the Python below is the one FocusQA runs in.
var FQ_PYTHON = "@@FOCUSQA_PYTHON@@";
var FQ_VERSION = "@@FOCUSQA_VERSION@@";
var FQ_TMP = "";
var FQ_KEEP = false;

args = fqOptions();
model = fqOpt(args, "model", "none");
openPath = fqOpt(args, "open", "");
savePath = fqOpt(args, "save", "");
csvPath = fqOpt(args, "csv", "");
keep = fqFlag(args, "keep");
FQ_KEEP = keep;

if (openPath != "") open(openPath);
if (nImages == 0) fqFail("no image is open (open one, or pass open=[path])");
if (bitDepth() == 24) fqFail("'" + getTitle() + "' is an RGB image; split its channels first");
Stack.getDimensions(width, height, nc, nz, nt);
if (nz < 2) fqFail("'" + getTitle() + "' is not a z-stack (1 slice)");
Stack.getPosition(c0, z0, t0);
id = getImageID();
title = getTitle();
label = getInfo("image.directory") + getInfo("image.filename");
if (getInfo("image.filename") == "") label = title;

tmp = fqTempDir();
imgPath = tmp + "image.tif";
fqExportImage(imgPath);
cmd = FQ_PYTHON + " -m napari_focusqa fiji assess-for-macro " + imgPath + " --out " + tmp + " --model " + model + " --no-patches";
showStatus("FocusQA: focus curves of " + title + " ...");
output = exec(FQ_PYTHON, "-m", "napari_focusqa", "fiji", "assess-for-macro", imgPath, "--out", tmp, "--model", model, "--label", label, "--frame", "" + (t0 - 1), "--no-patches");
modelUsed = fqCheckStatus(tmp, cmd, output);

lines = fqLines(tmp + "curves.tsv");
heads = split(lines[0], "(\t)");
ici = fqColumn(heads, "channel_index"); ich = fqColumn(heads, "channel");
izi = fqColumn(heads, "z_index"); izu = fqColumn(heads, "z_um"); isn = fqColumn(heads, "sf_norm");
colors = newArray("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f");
best = fqLines(tmp + "best.tsv");
xlabel = "z index";
f = fqCells(lines[1], heads.length);
if (f[izu] != "") xlabel = "z (um)";
Plot.create("FocusQA focus curves: " + title, xlabel, "SF (normalised)");
Plot.setLimits(NaN, NaN, -0.05, 1.1);
legend = "";
for (b = 1; b < best.length; b++) {
	if (best[b] == "") continue;
	bf = split(best[b], "(\t)");
	ci = parseInt(bf[0]);
	bz = parseInt(bf[2]);
	xs = newArray(0); ys = newArray(0);
	for (i = 1; i < lines.length; i++) {
		if (lines[i] == "") continue;
		f = fqCells(lines[i], heads.length);
		if (parseInt(f[ici]) != ci) continue;
		if (f[izu] != "") x = parseFloat(f[izu]); else x = parseInt(f[izi]);
		xs = Array.concat(xs, x);
		ys = Array.concat(ys, parseFloat(f[isn]));
		if (parseInt(f[izi]) == bz) { xb = x; yb = parseFloat(f[isn]); }
	}
	col = colors[ci % colors.length];
	Plot.setColor(col, col);
	Plot.setLineWidth(2);
	Plot.add("connected circle", xs, ys);
	Plot.setLineWidth(1);
	Plot.drawLine(xb, 0, xb, 1.05);
	if (legend != "") legend = legend + "\n";
	name = "channel " + (ci + 1);
	if (bf[1] != "" + ci) name = bf[1];
	legend = legend + name + " (best: z index " + bz + ")";
	print("FocusQA: " + title + " channel " + (ci + 1) + " (" + bf[1] + "): SF peak at slice " + (bz + 1) + " (z index " + bz + ")");
}
Plot.setColor("black");
Plot.addLegend(legend, "top-right");
Plot.show();
plotId = getImageID();
if (savePath != "") saveAs("PNG", savePath);
if (csvPath != "") ok = File.copy(tmp + "curves.csv", csvPath);
if (!keep) fqDeleteDir(tmp);

// FocusQA "Focus Curves": spatial frequency (SF) vs z per channel of the current stack as an
// ImageJ Plot, best-focus slice per channel marked with a vertical line (the same numbers as `focusqa zstack`).
//
// A dialog asks for the options (recorded by the macro Recorder); a macro can give them:
// run("Focus Curves", "model=none save=[plot.png] csv=[curves.csv]").
//   model=ID|CARD.json|none   also compute the model's expected level per slice (default none)
//   stain_c1=auto|nucleus|... stain class of channel 1 (auto = from the channel name), ...
//   save=[path.png]           save the plot as PNG
//   csv=[path.csv]            save the curves table
//   keep                      keep the temporary exchange folder
//   open=[path]               (macro only) open this image first
// The Python that FocusQA runs in comes from plugins/FocusQA/focusqa.cfg (`focusqa fiji
// install`) or $FOCUSQA_PYTHON.
var FQ_VERSION = "@@FOCUSQA_VERSION@@";
var FQ_PROTOCOL = "@@FOCUSQA_PROTOCOL@@";
var FQ_STAINS = "@@FOCUSQA_STAINS@@";
var FQ_TMP = "";
var FQ_KEEP = false;

openPath = fqOpt(fqOptions(), "open", "");
if (openPath != "") open(openPath);
if (nImages == 0) fqFail("no image is open (open one, or pass open=[path])");
if (bitDepth() == 24) fqFail("'" + getTitle() + "' is an RGB image; split its channels first");
Stack.getDimensions(width, height, nc, nz, nt);
if (nz < 2) fqFail("'" + getTitle() + "' is not a z-stack (1 slice)");
// the dialog's fields: model, one stain per channel (Array.concat with a one-element
// array returned by a function loses its text in ImageJ 1.53t, so append one by one)
labels = newArray("Model"); kinds = newArray("string"); defs = newArray("none"); items = newArray("");
for (c = 1; c <= nc; c++) {
	labels = Array.concat(labels, "Stain_c" + c); kinds = Array.concat(kinds, "choice");
	defs = Array.concat(defs, "auto"); items = Array.concat(items, FQ_STAINS);
}
labels = Array.concat(labels, newArray("Save (plot PNG)", "Csv (curves table)", "Keep (exchange files, for debugging)"));
kinds = Array.concat(kinds, newArray("file", "file", "check"));
defs = Array.concat(defs, newArray("", "", "0"));
items = Array.concat(items, newArray("", "", ""));
msg = "FocusQA " + FQ_VERSION + ": SF vs z of '" + getTitle() + "'\nModel none = SF only; a model adds its expected level per slice.";
v = fqDialog("Focus Curves", msg, labels, kinds, defs, items);
model = v[0];
if (model == "") model = "none";
stains = "";
for (c = 1; c <= nc; c++) {
	if (c > 1) stains = stains + ",";
	stains = stains + v[c];
}
savePath = v[nc + 1];
csvPath = v[nc + 2];
keep = (v[nc + 3] == "1");
FQ_KEEP = keep;
py = fqPython();

Stack.getPosition(c0, z0, t0);
id = getImageID();
title = getTitle();
label = getInfo("image.directory") + getInfo("image.filename");
if (getInfo("image.filename") == "") label = title;

tmp = fqTempDir();
imgPath = tmp + "image.tif";
fqExportImage(imgPath);
cmd = py + " -m fiji_bridge assess-for-macro " + imgPath + " --out " + tmp + " --model " + model + " --stains " + stains + " --no-patches";
showStatus("FocusQA: focus curves of " + title + " ...");
if (nt > 1) output = exec(py, "-m", "fiji_bridge", "assess-for-macro", imgPath, "--out", tmp, "--model", model, "--label", label, "--stains", stains, "--protocol", FQ_PROTOCOL, "--no-patches", "--frame", "" + (t0 - 1));
else output = exec(py, "-m", "fiji_bridge", "assess-for-macro", imgPath, "--out", tmp, "--model", model, "--label", label, "--stains", stains, "--protocol", FQ_PROTOCOL, "--no-patches");
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
	bf = fqCells(best[b], 8);
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
	bsf = parseInt(bf[5]);
	print("FocusQA: " + title + " channel " + (ci + 1) + " (" + bf[1] + "): best focus at slice " + (bz + 1) + " (z index " + bz + "), SF peak at slice " + (bsf + 1) + " (z index " + bsf + ")");
}
Plot.setColor("black");
Plot.addLegend(legend, "top-right");
Plot.show();
plotId = getImageID();
if (savePath != "") saveAs("PNG", savePath);
if (csvPath != "") ok = File.copy(tmp + "curves.csv", csvPath);
if (!keep) fqDeleteDir(tmp);

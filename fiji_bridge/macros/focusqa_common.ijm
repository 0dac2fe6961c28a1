// ---- FocusQA shared macro functions (appended to each macro by `focusqa fiji update-site` / `install`) ----

// The argument string: getArgument() for runMacro(), Macro options for run("...", "...").
function fqOptions() {
	a = getArgument();
	if (a == "") {
		o = call("ij.Macro.getOptions");
		if (o != "null" && o != "0") a = o;
	}
	return String.trim(a);
}

// Value of key=value or key=[value with spaces] in args, else dflt.
function fqOpt(args, key, dflt) {
	s = " " + args;
	i = indexOf(s, " " + key + "=");
	if (i < 0) return dflt;
	v = substring(s, i + lengthOf(key) + 2);
	if (startsWith(v, "[")) {
		j = indexOf(v, "]");
		if (j < 0) fqFail("option " + key + ": missing ']' in '" + args + "'");
		return substring(v, 1, j);
	}
	j = indexOf(v, " ");
	if (j >= 0) v = substring(v, 0, j);
	return v;
}

// True when a bare keyword is present in args.
function fqFlag(args, key) {
	if (indexOf(" " + args + " ", " " + key + " ") >= 0) return true;
	return false;
}

// The command's dialog; returns the values as strings (check boxes "1"/"0").
// labels[i] is shown with '_' as a space; its first word in lower case is the macro key
// (so run("Assess Focus", "model=none results=[a.csv]") fills the same fields and the
// Recorder writes such a call). kinds: string, file, number, check or choice (items
// separated by '|'). Without a dialog (runMacro(path, "key=value ...") or a batch run
// with no options) the same keys are read from the argument, with the same defaults.
function fqDialog(title, message, labels, kinds, defs, items) {
	args = getArgument();
	opts = call("ij.Macro.getOptions");
	noOpts = (opts == "null" || opts == "0" || String.trim(opts) == "");
	v = newArray(labels.length);
	if (args != "" || (noOpts && is("batch mode"))) {
		for (i = 0; i < labels.length; i++) {
			key = fqKey(labels[i]);
			if (kinds[i] == "check") {
				v[i] = defs[i];
				if (fqFlag(args, key)) v[i] = "1";
			} else v[i] = fqOpt(args, key, defs[i]);
		}
		return v;
	}
	Dialog.create(title);
	if (message != "") Dialog.addMessage(message);
	for (i = 0; i < labels.length; i++) {
		if (kinds[i] == "string") Dialog.addString(labels[i], defs[i], 28);
		else if (kinds[i] == "file") Dialog.addFile(labels[i], defs[i]);
		else if (kinds[i] == "number") Dialog.addNumber(labels[i], parseFloat(defs[i]));
		else if (kinds[i] == "check") {
			on = false;
			if (defs[i] == "1") on = true;
			Dialog.addCheckbox(labels[i], on);
		}
		else {
			choices = split(items[i], "|");  // (inline as an argument it breaks 1.53t's parser)
			Dialog.addChoice(labels[i], choices, defs[i]);
		}
	}
	Dialog.show();
	for (i = 0; i < labels.length; i++) {
		if (kinds[i] == "string" || kinds[i] == "file") v[i] = Dialog.getString();
		else if (kinds[i] == "number") v[i] = "" + Dialog.getNumber();
		else if (kinds[i] == "check") {
			if (Dialog.getCheckbox()) v[i] = "1"; else v[i] = "0";
		} else v[i] = Dialog.getChoice();
	}
	return v;
}

// The macro key of a dialog label, as ImageJ derives it: the first word, lower case.
function fqKey(label) {
	i = indexOf(label, " ");
	if (i > 0) label = substring(label, 0, i);
	return toLowerCase(label);
}

// The Python FocusQA runs in: $FOCUSQA_PYTHON, else python= in plugins/FocusQA/focusqa.cfg
// (written by `focusqa fiji install`, so updating the macros or FocusQA keeps it).
function fqPython() {
	e = call("java.lang.System.getenv", "FOCUSQA_PYTHON");
	if (e != "" && e != "0" && e != "null") return e;
	plugins = getDirectory("plugins");  // "" in a -batch run before any run() call
	if (plugins == "") plugins = getDirectory("imagej") + "plugins" + File.separator;
	cfg = plugins + "FocusQA" + File.separator + "focusqa.cfg";
	if (!File.exists(cfg)) {
		fqFail("FocusQA is not configured: " + cfg + " is missing. In the Python environment "
			+ "that has FocusQA, run: focusqa fiji install " + getDirectory("imagej"));
	}
	lines = split(File.openAsString(cfg), "\n");
	for (i = 0; i < lines.length; i++) {
		l = String.trim(lines[i]);
		if (startsWith(l, "python=")) return String.trim(substring(l, 7));
	}
	fqFail("no python= line in " + cfg + " (run focusqa fiji install again)");
}

// Report an error in the Log (and, interactively, in a dialog) and stop the macro.
function fqFail(msg) {
	print("FocusQA error: " + msg);
	if (FQ_TMP != "" && !FQ_KEEP) fqDeleteDir(FQ_TMP);
	if (is("batch mode")) exit();
	exit("FocusQA error: " + msg);
}

// A new empty temporary folder for the data exchange with Python.
function fqTempDir() {
	d = getDirectory("temp") + "focusqa-" + d2s(getTime(), 0) + "-" + d2s(random * 1e6, 0) + File.separator;
	File.makeDirectory(d);
	if (!File.isDirectory(d)) fqFail("cannot create the temporary folder " + d);
	FQ_TMP = d;
	return d;
}

function fqDeleteDir(d) {
	if (!File.isDirectory(d)) return;
	list = getFileList(d);
	for (i = 0; i < list.length; i++) ok = File.delete(d + list[i]);
	ok = File.delete(d);
}

// Save the current image (all channels, slices, frames) as TIFF without renaming it.
function fqExportImage(path) {
	id = getImageID();
	wasBatch = is("batch mode");
	setBatchMode(true);
	run("Duplicate...", "title=focusqa_export duplicate");
	saveAs("Tiff", path);
	close();
	selectImage(id);
	if (!wasBatch) setBatchMode(false);
	if (!File.exists(path)) fqFail("could not save the image to " + path);
}

// Check the status file written by `focusqa fiji assess-for-macro`; returns the model id.
function fqCheckStatus(dir, cmd, output) {
	st = dir + "status.txt";
	if (!File.exists(st)) {
		fqFail("the FocusQA command did not run.\n  command: " + cmd + "\n  output: " + output
			+ "\n  (re-install with `focusqa fiji install` if Python moved)");
	}
	s = split(File.openAsString(st), "(\t)");
	if (s[0] != "ok") {
		msg = "";
		if (s.length > 1) msg = s[1];
		fqFail(msg + "\n  command: " + cmd);
	}
	if (s.length > 1) return String.trim(s[1]);
	return "";
}

// Lines of a tab-separated file (header first), skipping empty lines.
function fqLines(path) {
	if (!File.exists(path)) fqFail("missing result file " + path);
	return split(File.openAsString(path), "\n");
}

function fqCells(line, n) {
	c = split(line, "(\t)");
	while (c.length < n) c = Array.concat(c, newArray(""));
	return c;
}

function fqColumn(heads, name) {
	for (i = 0; i < heads.length; i++) if (heads[i] == name) return i;
	fqFail("result file has no column " + name);
}

// Fill the Results table from results.tsv (numbers as numbers, the rest as text).
function fqLoadResults(path) {
	lines = fqLines(path);
	heads = split(lines[0], "(\t)");
	run("Clear Results");
	row = 0;
	for (i = 1; i < lines.length; i++) {
		if (lines[i] == "") continue;
		cells = fqCells(lines[i], heads.length);
		for (j = 0; j < heads.length; j++) {
			v = cells[j];
			x = parseFloat(v);
			if (v != "" && !isNaN(x) && v != "True" && v != "False") setResult(heads[j], row, x);
			else setResult(heads[j], row, v);
		}
		row++;
	}
	updateResults();
	return row;
}

// Patch rectangles from patches.tsv into the overlay; returns their number.
function fqLoadOverlay(path, nc, nz, nt) {
	lines = fqLines(path);
	heads = split(lines[0], "(\t)");
	ic = fqColumn(heads, "c"); iz = fqColumn(heads, "z"); it = fqColumn(heads, "t");
	ix = fqColumn(heads, "x"); iy = fqColumn(heads, "y"); iw = fqColumn(heads, "w");
	ih = fqColumn(heads, "h"); icol = fqColumn(heads, "color"); iname = fqColumn(heads, "name");
	hyper = nc > 1 || nt > 1;
	n = 0;
	for (i = 1; i < lines.length; i++) {
		if (lines[i] == "") continue;
		f = fqCells(lines[i], heads.length);
		makeRectangle(parseInt(f[ix]), parseInt(f[iy]), parseInt(f[iw]), parseInt(f[ih]));
		Roi.setStrokeColor(f[icol]);
		Roi.setName(f[iname]);
		if (hyper) Roi.setPosition(parseInt(f[ic]), parseInt(f[iz]), parseInt(f[it]));
		else if (nz > 1) Roi.setPosition(parseInt(f[iz]));
		Overlay.addSelection;
		n++;
	}
	run("Select None");
	return n;
}

// Colour legend from legend.tsv: one square per level (shown on every slice), a gap, and
// the grey of patches without structure (the row with an empty level).
function fqLoadLegend(path, width) {
	lines = fqLines(path);
	k = 0;
	for (i = 1; i < lines.length; i++) {
		f = fqCells(lines[i], 2);
		if (lines[i] != "" && f[0] != "") k++;
	}
	if (k == 0) return 0;
	size = floor((width - 8) / (k + 2));
	if (size > 16) size = 16;
	if (size < 6) size = 6;
	for (i = 1; i < lines.length; i++) {
		if (lines[i] == "") continue;
		f = fqCells(lines[i], 2);
		if (f[0] == "") {
			slot = k + 1;
			name = "focusqa legend no structure";
		} else {
			slot = parseInt(f[0]);
			name = "focusqa legend level " + f[0];
		}
		makeRectangle(2 + slot * size, 2, size, size);
		Roi.setFillColor(f[1]);
		Roi.setName(name);
		Overlay.addSelection;
		Overlay.setPosition(0);
	}
	run("Select None");
	fs = size - 2;
	if (fs < 8) fs = 8;
	setFont("SansSerif", fs);
	setColor("white");
	caption = "0 in focus ... " + (k - 1);  // as fiji_bridge.overlay.legend_text
	if (width >= 480) caption = caption + " defocused; dark = uncertain; grey = no structure";
	else if (width >= 300) caption = caption + "; grey = no structure";
	Overlay.drawString(caption, 2, 2 + size + 1 + fs);
	Overlay.setPosition(0);
	return k;
}

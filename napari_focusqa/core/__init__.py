"""Pure numpy + onnxruntime core: no Qt, no napari, no Java, no hardware."""

import sys

from napari_focusqa.cli import main

sys.exit(main())

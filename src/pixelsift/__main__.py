from pixelsift.cli import entry

entry()

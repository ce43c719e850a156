"""Writers of result files (reports): explain/ and slides/ compute arrays and dataclasses, these write them."""

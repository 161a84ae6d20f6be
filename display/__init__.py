"""Boards: LED matrices (MAX7219 via luma.led-matrix), HDMI screens through a Linux
framebuffer, and the image-dir test board (docs/DISPLAY.md).

- `display.board`: the narrow interface every output kind implements (show a PIL image,
  its geometry, ok/failed) and the kind → module table, imported lazily.
- `display.render`, `display.layout`, `display.fonts`, `display.scene`: pure slide
  rendering (a PIL image from a slide spec, a size and a time).
- `display.presenter`: shows scenes on a board on time, in its own thread.
"""

"""Draw a rich renderable as a PNG terminal screenshot, with Pillow and the DejaVu Sans Mono font
matplotlib ships (`pip install -e '.[docs]'`; no system library such as cairo is needed).

    from terminal_png import save_png
    save_png(renderable, "docs/img/status-watch.png", title="migrator status --watch", width=110)
"""

from __future__ import annotations

import io
from pathlib import Path

from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.terminal_theme import MONOKAI, TerminalTheme


def _font_path(bold: bool) -> str:
    import matplotlib

    name = "DejaVuSansMono-Bold.ttf" if bold else "DejaVuSansMono.ttf"
    return str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name)


def _rgb(color, theme: TerminalTheme, foreground: bool) -> tuple[int, int, int]:
    t = color.get_truecolor(theme, foreground=foreground)
    return (t.red, t.green, t.blue)


def _blend(a: tuple[int, int, int], b: tuple[int, int, int], k: float) -> tuple[int, int, int]:
    return tuple(int(x * (1 - k) + y * k) for x, y in zip(a, b))  # type: ignore[return-value]


def render_png(renderable: RenderableType, *, title: str, width: int = 110, font_size: int = 15,
               theme: TerminalTheme = MONOKAI) -> bytes:
    """The renderable laid out `width` cells wide, drawn cell by cell in a window frame."""
    from PIL import Image, ImageDraw, ImageFont

    console = Console(width=width, force_terminal=True, color_system="truecolor", file=io.StringIO())
    lines = console.render_lines(renderable, console.options.update(width=width), pad=False)
    regular, bold = ImageFont.truetype(_font_path(False), font_size), ImageFont.truetype(_font_path(True), font_size)
    cell_w = regular.getlength("M")
    box = regular.getbbox("│")  # rows exactly as tall as a vertical box line: table borders join up
    line_h, dy = box[3] - box[1], -box[1]
    margin, bar = 20, 36
    background = (theme.background_color.red, theme.background_color.green, theme.background_color.blue)
    foreground = (theme.foreground_color.red, theme.foreground_color.green, theme.foreground_color.blue)
    img_w = int(width * cell_w) + 2 * margin
    img_h = len(lines) * line_h + 2 * margin + bar
    img = Image.new("RGB", (img_w + 16, img_h + 16), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle((8, 8, 8 + img_w, 8 + img_h), radius=10, fill=background, outline=(70, 70, 70))
    for i, color in enumerate(((255, 95, 87), (254, 188, 46), (40, 200, 64))):
        cx = 8 + margin + i * 22
        draw.ellipse((cx, 8 + 12, cx + 12, 8 + 24), fill=color)
    draw.text((8 + img_w / 2, 8 + 18), title, font=regular, fill=_blend(foreground, background, 0.4), anchor="mm")
    top = 8 + bar + margin // 2
    for row, line in enumerate(lines):
        col = 0
        y = top + row * line_h
        for seg in line:
            if seg.control or not seg.text:
                continue
            style = seg.style
            fg, bg = foreground, None
            if style is not None:
                if style.color is not None:
                    fg = _rgb(style.color, theme, True)
                if style.bgcolor is not None:
                    bg = _rgb(style.bgcolor, theme, False)
                if style.reverse:
                    fg, bg = (bg or background), fg
                if style.dim:
                    fg = _blend(fg, background, 0.45)
            x = 8 + margin + col * cell_w
            n = cell_len(seg.text)
            if bg is not None:
                draw.rectangle((x, y, x + n * cell_w, y + line_h), fill=bg)
            font = bold if style is not None and style.bold else regular
            for ch in seg.text:  # cell by cell: box-drawing lines meet whatever the glyph widths
                draw.text((8 + margin + col * cell_w, y + dy), ch, font=font, fill=fg)
                if style is not None and style.underline:
                    draw.line((8 + margin + col * cell_w, y + line_h - 2, 8 + margin + (col + 1) * cell_w,
                               y + line_h - 2), fill=fg)
                col += cell_len(ch)
    buf = io.BytesIO()
    img.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def save_png(renderable: RenderableType, path: str | Path, *, title: str, width: int = 110) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(render_png(renderable, title=title, width=width))
    return out

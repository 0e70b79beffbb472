"""The Voila prediction page: paste a URL or upload a picture, see the top hashtags.

``notebooks/dashboard.ipynb`` only does ``display(Dashboard().widget())``; all the
behaviour lives here so it is tested without a browser too. "Compare two
pictures" shows a second panel side by side. Bad URLs, non-images and a missing
model give a message in the page, never a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

from helpers.fetch import FetchError, FetchPolicy, fetch_bytes
from helpers.images import ImageError, decode_image, sniff_image_type
from helpers.plots import prediction_bars, to_png
from helpers.predict import ModelError, Predictor

TOP = 5


def default_model_dir() -> Path:
    """$HASHTAG_MODEL, else the workshop's newest model."""
    from helpers.workshop import workspace

    return Path(os.environ.get("HASHTAG_MODEL") or workspace().latest_model)


class Panel:
    """One picture: a URL box, an upload button, the picture and its chart."""

    def __init__(self, dashboard: Dashboard, number: int):
        import ipywidgets as w

        self.dashboard, self.number = dashboard, number
        self.url = w.Text(placeholder="https://… image URL", layout=w.Layout(width="320px"))
        self.url.add_class(f"hp-url-{number}")
        self.button = w.Button(description="Predict", button_style="primary")
        self.button.add_class(f"hp-predict-{number}")
        self.upload = w.FileUpload(accept="image/*", multiple=False, description="Upload")
        self.upload.add_class(f"hp-upload-{number}")
        self.picture = w.Image(format="png", layout=w.Layout(max_width="320px"))
        self.chart = w.Image(format="png", layout=w.Layout(max_width="360px"))
        self.message = w.HTML()
        self.message.add_class(f"hp-message-{number}")
        self.result = w.HTML()
        self.result.add_class(f"hp-result-{number}")
        self._show_images(False)
        self.button.on_click(lambda _: self.predict_url(self.url.value.strip()))
        self.url.continuous_update = False
        self.upload.observe(self._on_upload, names="value")
        self.box = w.VBox(
            [
                w.HTML(f"<b>Picture {number}</b>"),
                w.HBox([self.url, self.button]),
                self.upload,
                self.message,
                self.picture,
                self.result,
                self.chart,
            ],
            layout=w.Layout(padding="8px", border="1px solid #ddd"),
        )

    def _on_upload(self, change) -> None:
        files = change["new"]
        if files:
            item = files[0]
            self.predict_bytes(bytes(item["content"]), item["name"])

    def show_error(self, text: str) -> None:
        self.message.value = f'<span style="color:#b91c1c">⚠ {text}</span>'
        self.result.value = ""
        self._show_images(False)

    def _show_images(self, visible: bool) -> None:
        for image in (self.picture, self.chart):
            image.layout.display = "" if visible else "none"

    def predict_url(self, url: str) -> None:
        if not url:
            self.show_error("Paste an image URL first.")
            return
        self.message.value = "Fetching…"
        try:
            data = fetch_bytes(url, self.dashboard.fetch_policy)
        except FetchError as exc:
            self.show_error(f"Could not use that URL: {exc}")
            return
        self.predict_bytes(data, url)

    def predict_bytes(self, data: bytes, source: str) -> None:
        predictor = self.dashboard.predictor
        if predictor is None:
            self.show_error(self.dashboard.model_problem)
            return
        if sniff_image_type(data) is None:
            self.show_error(f"{source} is not an image (JPEG, PNG, GIF, WebP or BMP).")
            return
        try:
            probs = predictor.predict_bytes([data])[0]
            preview = decode_image(data, max_pixels=50_000_000)
        except ImageError as exc:
            self.show_error(f"Could not read {source}: {exc}")
            return
        top = predictor.top_k(probs, TOP)
        self.picture.value = _png(preview)
        self.chart.value = to_png(prediction_bars(top))
        self._show_images(True)
        best, p = top[0]
        self.result.value = f"<b>#{best}</b> {p:.0%}"
        self.message.value = ""


def _png(rgb) -> bytes:
    import io

    from PIL import Image

    img = Image.fromarray(rgb)
    img.thumbnail((320, 320))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


class Dashboard:
    """The whole page: which model answers, one or two picture panels."""

    def __init__(
        self, model_dir: str | Path | None = None, fetch_policy: FetchPolicy | None = None
    ):
        self.model_dir = Path(model_dir) if model_dir else default_model_dir()
        self.fetch_policy = fetch_policy or FetchPolicy.from_env()
        self.predictor: Predictor | None = None
        self.model_problem = ""
        try:
            self.predictor = Predictor(self.model_dir)
        except ModelError:
            self.model_problem = (
                "No trained model yet: run 04_retrain.ipynb "
                "(or `hashtag train`), then reload this page."
            )
        self.panels = [Panel(self, 1), Panel(self, 2)]

    def widget(self):
        import ipywidgets as w

        if self.predictor:
            header = (
                f"Model <code>{self.predictor.model_id}</code> "
                f"({self.predictor.backbone}) knows: "
                + " ".join(f"#{x}" for x in self.predictor.labels)
            )
        else:
            header = f'<span style="color:#b91c1c">{self.model_problem}</span>'
        info = w.HTML(header)
        info.add_class("hp-model")
        compare = w.Checkbox(description="Compare two pictures", value=False)
        compare.add_class("hp-compare")
        second = self.panels[1].box
        second.layout.display = "none"

        def toggle(change):
            second.layout.display = "" if change["new"] else "none"

        compare.observe(toggle, names="value")
        return w.VBox(
            [
                w.HTML("<h2>Which hashtag is this?</h2>"),
                info,
                compare,
                w.HBox([self.panels[0].box, second]),
            ]
        )

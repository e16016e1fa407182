"""The app's two browser components, as Gradio's own custom components are made: gr.HTML subclasses that
bundle their template, CSS and script (mrnet/app/web/). Their value is the view the browser shows; their
`data` prop carries what they draw (payload.viewer_payload, browse.table_payload)."""
from __future__ import annotations

import re
from pathlib import Path

import gradio as gr

from mrnet.app.view import MAPS, MODES
from mrnet.core.config import PALETTES

WEB = Path(__file__).resolve().parent / "web"


# a component's script, in the order its parts are bundled: the viewer's pure modules (tested by node's runner,
# tests/js/) come before the code that uses them
SCRIPTS = {"viewer": ["viewer-decode", "viewer-render", "viewer"], "cases": ["cases"]}


def web_assets(name: str) -> tuple[str, str, str]:
    """A component's HTML skeleton, CSS and script (gr.HTML's html_template, css_template, js_on_load)."""
    html, css = ((WEB / f"{name}.{ext}").read_text() for ext in ("html", "css"))
    js = "\n".join((WEB / f"{part}.js").read_text() for part in SCRIPTS[name])
    return html, css, js


class DataProp(gr.HTML):
    """A gr.HTML whose `data` is a prop only. gr.HTML's __getattr__ would read "data" (quoted in the script) as an
    event's name, and an attribute of that name makes Gradio send every update's data twice: as the prop and as a
    top-level key that the browser never reads (the viewer's payload, 300 kB, went twice per analysis)."""

    def __getattr__(self, name: str):
        if name == "data" or name.startswith("__") or name not in self.quoted_words():
            raise AttributeError(name)
        return super().__getattr__(name)

    def quoted_words(self) -> frozenset[str]:
        """Every quoted word of the script, found once: gr.HTML looks each missing attribute up with a regex
        over the whole script, and Gradio asks for many of them per block for every new session (40 page
        loads at once spent 4 s of the server's event loop there)."""
        js = self.__dict__.get("js_on_load") or ""
        cached = self.__dict__.get("_quoted_words")
        if cached is None or cached[0] is not js:
            cached = self.__dict__["_quoted_words"] = (js, frozenset(re.findall(r"""(?=['"`](\w+)['"`])""", js)))
        return cached[1]


def bundled(name: str, kwargs: dict) -> dict:
    """The component's own template, CSS and script, unless given (Gradio rebuilds a component from its props
    to apply an update, and passes them all back)."""
    html, css, js = web_assets(name)
    return {"html_template": html, "css_template": css, "js_on_load": js, "apply_default_css": False} | kwargs


class SliceViewer(DataProp):
    """One large image per plane with the CAM over it, drawn in the browser (web/viewer.js); its value is the
    view (mrnet.app.view.View as a dict), written back as the reviewer scrolls and switches."""

    def __init__(self, value=None, data=None, **kwargs):
        super().__init__(value=value, data=data, **bundled("viewer", kwargs))

    def api_info(self):
        return {"type": "object", "title": "Viewer view", "properties": {
            "task": {"type": "string"}, "method": {"type": "string"}, "opacity": {"type": "number"},
            "mode": {"type": "string", "enum": list(MODES)}, "plane": {"type": "string"},
            "slices": {"type": "object", "additionalProperties": {"type": "integer"}},
            "maps": {"type": "string", "enum": list(MAPS)}, "palette": {"type": "string", "enum": list(PALETTES)},
            "mark": {"type": ["object", "null"], "properties": {k: {"type": "string" if k == "plane" else "integer"}
                                                                for k in ("plane", "slice", "x", "y", "w", "h")}}}}


class CasesView(DataProp):
    """A labelled set browsed by outcome (web/cases.js): confusion matrix, ROC, the case list; opening a row
    triggers its `open` event with {dataset, case, task, next, compare}."""

    def __init__(self, value=None, data=None, **kwargs):
        super().__init__(value=value, data=data, **bundled("cases", kwargs))

    def api_info(self):
        return {"type": "object", "title": "Case on screen", "properties": {
            "dataset": {"type": "string"}, "case": {"type": "string"}, "task": {"type": "string"},
            "compare": {"type": "boolean"}}}



def server_state(value=None) -> gr.State:
    """gr.State whose page config does not carry the repr of its delete callback (a function's memory address).
    Not a subclass: Gradio would take a subclass for a custom component and fetch a frontend for it."""
    state = gr.State(value)
    config = state.get_config
    state.get_config = lambda: {k: v for k, v in config().items() if k != "delete_callback"}  # type: ignore[method-assign]
    return state

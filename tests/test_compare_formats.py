"""compare's three formats each carry the symbols held: a plain line, an italic markdown line,
a `held` field per network in JSON; and its help names what it reads."""
from __future__ import annotations

import json

import pytest

from archcalc.cli import main
from conftest import SPECS

# ResNet-34 against its plain twin: the three projection shortcuts (1x1 conv, no bias, + BN's
# gamma and beta) are all that differs
PROJECTIONS = (64 * 128 + 2 * 128) + (128 * 256 + 2 * 256) + (256 * 512 + 2 * 512)


def test_json_carries_totals_blocks_and_what_was_held(capsys):
    assert main(["compare", str(SPECS / "resnet34.arch"), str(SPECS / "plain34.arch"),
                 "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    resnet, plain = d["networks"]
    assert (resnet["network"], plain["network"]) == ("ResNet34", "Plain34")
    assert resnet["held"] == plain["held"] == {"H": 224, "W": 224}
    assert resnet["totals"]["params"] == 21_797_672  # torchvision's resnet34
    assert PROJECTIONS == 173_824
    assert plain["totals"]["params"] == 21_797_672 - PROJECTIONS
    assert resnet["output"] == [1, 1, 1000] and resnet["depth"] == plain["depth"] == 34
    blocks = {b["block"]: b for b in d["blocks"]}
    # layer2's projection: 1x1, 64 -> 128 maps at 28x28; layer3's: 128 -> 256 at 14x14
    assert blocks["layer2"]["macs"][0] - blocks["layer2"]["macs"][1] == 28 * 28 * 128 * 64
    assert blocks["layer3"]["macs"][0] - blocks["layer3"]["macs"][1] == 14 * 14 * 256 * 128
    assert blocks["layer2"]["params"][0] - blocks["layer2"]["params"][1] == 64 * 128 + 2 * 128


def test_markdown_ends_with_the_held_symbols_in_italics(capsys):
    assert main(["compare", str(SPECS / "vgg16.arch"), str(SPECS / "lenet5.arch"),
                 "--set", "H=256", "--format", "markdown"]) == 0
    assert capsys.readouterr().out.splitlines()[-2:] == ["", "*held: VGG16 H=256, W=224*"]


def test_compare_help_names_onnx_models_and_json(capsys):
    with pytest.raises(SystemExit) as e:
        main(["compare", "--help"])
    assert e.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "specs two or more .arch specs or .onnx models" in out
    assert "--format {text,markdown,json}" in out

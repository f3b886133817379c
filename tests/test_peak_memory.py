"""Peak memory, measured: every command, given an input designed to pass the limit it was given
(`--max-memory`) or the one it applies by default, refuses with its message, and the process's
peak resident memory stays under that limit plus the interpreter's and imports' own, measured
here by running a trivial command with the same modules loaded. A run accepted just under its
limit must stay under it too.

Each command runs in a child process, which reports its own peak as it exits: the kernel's
VmHWM of its address space, made at exec. Not the ru_maxrss that wait4 gives: that counts the
pages the child shared with this process between fork and exec, as large as the test process
has grown (500 MiB late in the suite, once numba's loops are loaded). The child's address space
is capped at 4 GiB and its files at 1 GiB, so that a command failing the property ends in an
error here instead of taking the shared machine's memory or disk."""
from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, SPECS
from test_hostile_files import HAVE_ONNX, forged_npz, npy_header

GIB, MIB = 2**30, 2**20
CORE, DRAWING, ONNX = (), ("matplotlib.pyplot",), ("onnx",)  # modules loaded before the command
IMAGES = DRAWING + ("PIL.Image", "PIL.PngImagePlugin")  # augment reads image files too

# Loads the modules, runs the command as `archcalc` does (python -m archcalc), and on its way
# out writes its peak (VmHWM, KiB) to the file named first.
CHILD = ("import importlib, sys\n"
         "def peak():\n"
         "    with open('/proc/self/status') as f:\n"
         "        kib = next(line.split()[1] for line in f if line.startswith('VmHWM:'))\n"
         "    with open(sys.argv[1], 'w') as f:\n"
         "        f.write(kib)\n"
         "for m in sys.argv[2].split(','):\n"
         "    m and importlib.import_module(m)\n"
         "from archcalc.cli import main\n"
         "try:\n"
         "    sys.exit(main(sys.argv[3:]))\n"
         "finally:\n"
         "    peak()\n")


def safety_net():
    resource.setrlimit(resource.RLIMIT_AS, (4 * GIB, 4 * GIB))
    resource.setrlimit(resource.RLIMIT_FSIZE, (GIB, GIB))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file too large: an error, not a kill


def measured(argv, preload, cwd) -> tuple[int, str, str, int]:
    """(exit status, stdout, stderr, peak resident bytes) of `archcalc ARGV` in a child."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    out, err = cwd / ".stdout", cwd / ".stderr"
    with out.open("w") as o, err.open("w") as e:
        p = subprocess.Popen([sys.executable, "-c", CHILD, str(cwd / ".peak"), ",".join(preload), *argv],
                             cwd=cwd, env=env, stdout=o, stderr=e, preexec_fn=safety_net)
        p.wait()
    return p.returncode, out.read_text(), err.read_text(), int((cwd / ".peak").read_text()) * 1024


# What a command does besides the work its limit guards (parsing its arguments, a small spec)
# differs from the trivial command's by some hundred KiB; this bounds it.
OWN_WORK = 4 * MIB
# A command that multiplies matrices also holds OpenBLAS's packing buffers, whatever the sizes:
# a (n, 64) x (64, 64) float32 matmul touched 13-15 MiB beyond its output for n from 65,536 to
# 1,048,576 (0.5 MiB at n = 1,024); a fixed overhead of the BLAS, not of archcalc's estimate.
BLAS_BUFFERS = 16 * MIB


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """The fixed overhead: the peak of a trivial command (analyze LeNet-5; for a command that
    runs a network, run LeNet-5, which also loads numba's compiled loops, a fixed 125 MiB or so of
    code) with the same modules loaded, by module set, + OWN_WORK."""
    peaks = {}

    def peak(preload, trivial="analyze") -> int:
        if (preload, trivial) not in peaks:  # the largest of three: imports vary by a MiB or two
            runs = [measured([trivial, str(SPECS / "lenet5.arch")], preload,
                             tmp_path_factory.mktemp("baseline")) for _ in range(3)]
            assert all((status, err) == (0, "") for status, _, err, _ in runs)
            peaks[preload, trivial] = max(run[3] for run in runs)
        return peaks[preload, trivial] + OWN_WORK
    return peak


def spec(d: Path, name: str, *lines: str) -> str:
    (d / name).write_text("network N {\n" + "".join(f"    {line}\n" for line in lines) + "}\n")
    return name


def png_header(width: int, height: int) -> bytes:
    """A PNG's signature and header chunk alone: it claims width x height pixels, holds none."""
    ihdr = b"IHDR" + width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    chunks = [(13).to_bytes(4, "big") + ihdr + zlib.crc32(ihdr).to_bytes(4, "big"),
              bytes(4) + b"IDAT" + zlib.crc32(b"IDAT").to_bytes(4, "big")]  # where the pixels begin
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


LAYERS = "  = a network has at most 200,000 layers\n"
REPEAT = ("rep.arch:2:5: error: too many layers: repeat 1,000,000 makes at least 1,000,000\n"
          "  |\n2 |     repeat 1000000 { relu }\n  |     " + "^" * 23 + "\n" + LAYERS)
RUN_LIMIT = "  = lower the batch or the input size, or raise the limit (--max-memory)\n"
ONE_BY_ONE = ("input x : (512, 512, 16)", "conv c1 : f=1 c=64", "relu", "conv c2 : f=1 c=64")


def analyze_huge_file(d):
    with (d / "huge.arch").open("wb") as f:  # 16 GiB, sparse: no disk used
        f.truncate(16 * GIB)
    return (["analyze", "huge.arch"], CORE, 4 * 10**7,  # at most 4 bytes a character are read
            "error: cannot read spec 'huge.arch': larger than 10,000,000 characters\n")


def formula_long_repeat(d):
    (d / "rep.arch").write_text("network N {\n    repeat 1000000 { relu }\n}\n")
    return ["formula", "rep.arch"], CORE, 0, REPEAT  # counted before it is expanded


def compare_huge_sizes(d):
    spec(d, "pad.arch", "input x : (8, 8, 3)", "pad : top=" + "9" * 40)
    return (["compare", str(SPECS / "lenet5.arch"), "pad.arch"], CORE, 0,
            "pad.arch:3:5: error: pad 'pad1': output n_H grows too large: 41 digits; sizes have "
            "at most 40\n  |\n3 |     pad : top=" + "9" * 40 + "\n  |     " + "^" * 50 + "\n"
            "  = input of 'pad1' is (8, 8, 3)\n")


def sweep_billion_points(d):
    (d / "s.arch").write_text("network N(S=1) {\n    input x : (8, 8, 3)\n    conv : f=1 c=8 s=S\n}\n")
    return (["sweep", "s.arch", "--vary", "S=1..1000000000"], CORE, 0,
            "error: --vary S=1..1000000000: 1,000,000,000 points; a sweep evaluates at most "
            "10,000,000\n  = take a step (NAME=LOW..HIGH:STEP) or a narrower range\n")


def report_long_repeat(d):
    (d / "rep.arch").write_text("network N {\n    repeat 1000000 { relu }\n}\n")
    return ["report", "rep.arch", "--out", "out", "--jobs", "1"], DRAWING, 0, REPEAT


def run_over_max_memory(d):
    spec(d, "big.arch", *ONE_BY_ONE)
    return (["run", "big.arch", "--max-memory", "0.05"], CORE, int(0.05 * GIB),
            "error: running N at batch 1 would need about 128.0 MiB (128.0 MiB of live "
            "activations + 20.5 KiB of weights), over the limit of 51.2 MiB\n" + RUN_LIMIT)


def run_crops_over_max_memory(d):
    return (["run", str(SPECS / "lenet5.arch"), "--crops", "10", "--crop-from", "100000",
             "--max-memory", "0.05"], CORE, int(0.05 * GIB),
            "error: drawing 1 random image of 100,000x100,000x1 would need 37.3 GiB, over the "
            "limit of 51.2 MiB\n  = lower --crop-from or --batch, or raise the limit (--max-memory)\n")


def run_input_header_of_a_trillion_floats(d):
    (d / "x.npy").write_bytes(npy_header((10**6, 32, 32, 1)) + bytes(64))
    return (["run", str(SPECS / "lenet5.arch"), "--input", "x.npy", "--max-memory", "0.05"],
            CORE, int(0.05 * GIB),
            "error: input 'x.npy' is truncated: its header's (1000000, 32, 32, 1) of float32 needs "
            "4,096,000,128 bytes, the file holds 192\n")


def run_weights_zip_bomb(d):
    spec(d, "fc.arch", "input x : (1, 1, 30000)", "fc a : 30000", "fc b : 30000", "fc c : 30000")
    forged_npz(d / "w.npz", {f"{k}/W": (30000, 30000) for k in "abc"})  # 10.8 GB declared
    return (["run", "fc.arch", "--weights", "w.npz", "--max-memory", "100"], CORE, 8 * GIB,
            "error: weights 'w.npz' hold 10,800,000,000 bytes of arrays, over the limit of "
            "8,589,934,592\n  = the largest, 'a/W', is (30000, 30000) of float32: 3,600,000,000 bytes\n")


def export_past_protobufs_limit(d):
    spec(d, "fc.arch", "input x : (1, 1, 100000)", "fc : 100000")
    return (["export", "fc.arch", "-o", "fc.onnx"], ONNX, 0,  # refused before weights are drawn
            "error: the model's float32 weights would take 40,000,400,000 bytes; an ONNX file "
            "holds at most 2,147,483,647 (protobuf's limit)\n"
            "  = the largest layer, 'fc1', holds 40,000,400,000 bytes\n")


def import_constant_of_shape(d):
    import onnx
    from onnx_models import Builder, unchecked
    b = Builder("fill")
    b.node("ConstantOfShape", [b.const(np.array([30000, 30000], np.int64))], name="fill")
    onnx.save(unchecked(b, b.node("Relu", ["x"])), d / "fill.onnx")
    return (["import", "fill.onnx"], ONNX, 0,  # constants are bounded in elements, before made
            "error: fill.onnx: 1 node(s) archcalc cannot import\n"
            "  = node 0 'fill': ConstantOfShape would make a constant of shape [30000, 30000]: "
            "900,000,000 elements, over the limit of 10,000,000 for constants folded at import\n")


def augment_huge_size(d):
    return (["augment", "--size", "100000", "--out", "grid.png"], IMAGES, 0,
            "archcalc augment: error: argument --size: expected a side from 8 to 2,048 pixels, "
            "got '100000'\n")


def augment_huge_image(d):
    (d / "big.png").write_bytes(png_header(10_000, 6_000))  # under Pillow's own bomb bound
    return (["augment", "big.png", "--out", "grid.png"], IMAGES, 0,
            "error: cannot read image 'big.png': 10,000 x 6,000 pixels, over the limit of "
            "50,000,000\n")


REFUSED = [analyze_huge_file, formula_long_repeat, compare_huge_sizes, sweep_billion_points,
           report_long_repeat, run_over_max_memory, run_crops_over_max_memory,
           run_input_header_of_a_trillion_floats, run_weights_zip_bomb,
           pytest.param(export_past_protobufs_limit, marks=pytest.mark.skipif(not HAVE_ONNX, reason="onnx")),
           pytest.param(import_constant_of_shape, marks=pytest.mark.skipif(not HAVE_ONNX, reason="onnx")),
           augment_huge_size, augment_huge_image]


@pytest.mark.parametrize("case", REFUSED)
def test_a_command_refuses_past_its_limit_within_the_limit(case, tmp_path, baseline):
    argv, preload, limit, message = case(tmp_path)
    status, out, err, peak = measured(argv, preload, tmp_path)
    if message.startswith("archcalc "):  # a usage error: argparse's usage line, then the message
        assert (status, out, err.splitlines()[-1] + "\n") == (2, "", message), err
    else:
        assert (status, out) == (1, ""), err
        assert err == message  # one message, located where it comes from a spec
    assert peak <= baseline(preload) + limit, (peak / MIB, baseline(preload) / MIB, limit / MIB)
    assert not any(p.is_file() for p in (tmp_path / "out").rglob("*"))  # report: nothing written


def test_a_run_accepted_just_under_its_limit_stays_under_it(tmp_path, baseline):
    """Predicted 128.0 MiB: 512*512*64 floats for each of c1 and c2, live together (the ReLU runs
    inside c1), + 20.5 KiB of weights ((16 + 1) * 64 + (64 + 1) * 64 floats = 20,992 bytes);
    the limit, 0.126 GiB = 129.0 MiB, accepts it."""
    spec(tmp_path, "big.arch", *ONE_BY_ONE)
    status, out, err, peak = measured(["run", "big.arch", "--max-memory", "0.126"], CORE, tmp_path)
    assert (status, err) == (0, "")
    assert "output 'c2': (1, 512, 512, 64)\n" in out
    fixed = baseline(CORE, "run")
    assert peak <= fixed + BLAS_BUFFERS + int(0.126 * GIB), (peak / MIB, fixed / MIB)


def test_finetune_refuses_a_feature_cache_past_the_limit(tmp_path, baseline):
    """600 images of 8x8x1 through a 1x1 conv of 65,536 channels: a cache of
    600 * 8 * 8 * 65,536 float32 = 10,066,329,600 bytes, over the default 8 GiB."""
    spec(tmp_path, "wide.arch", "input x : (8, 8, 1)", "conv c1 : f=1 c=65536", "relu r1",
         "flatten", "fc out : 2")
    np.savez(tmp_path / "data.npz", x=np.zeros((600, 8, 8, 1), np.float32), y=np.arange(600) % 2)
    status, out, err, peak = measured(["finetune", "wide.arch", "--freeze", "r1", "--data", "data.npz",
                                       "--cache", "feats.npy", "--out", "w.npz"], CORE, tmp_path)
    assert (status, out) == (1, "")
    assert err.startswith("error:") and "cache" in err and "Traceback" not in err, err
    assert peak <= baseline(CORE) + 8 * GIB

"""The mutation checks' engine (benchmarks/mutations.py) and its targets: every hand-picked
mutant still finds its source text and still compiles, and a mutated copy of the checkout is
what its tests import."""

import importlib

import pytest
from fastsiren.benchmarks import mutations

TARGETS = [f"fastsiren.benchmarks.{t}_mutations" for t in mutations.TARGET_NAMES]


@pytest.mark.parametrize("module", TARGETS, ids=mutations.TARGET_NAMES)
def test_every_hand_picked_mutant_finds_its_source_text(module):
    """A hand-picked defect replaces exact source text: a source edit that moves it would make
    the check fail to start, so each must still occur (as often as its ``occurrence`` says)
    and, in a Python file, the mutated file must still compile (a SyntaxError tests nothing)."""
    target = importlib.import_module(module)
    src = target.TARGET.source()
    names = [m.name for m in target.HAND_PICKED]
    assert len(set(names)) == len(names), "mutant names must be unique"
    for m in target.HAND_PICKED:
        text = mutations.mutated_text((src / m.file).read_text(), m)  # ValueError when `old` is gone
        assert text != (src / m.file).read_text(), m.name
        if m.file.endswith(".py"):
            compile(text, m.file, "exec")


def test_a_python_mutant_that_does_not_compile_is_refused(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("if x:\n    y = 1\n")
    bad = mutations.Mutant("no-body", "a.py", "    y = 1\n", "", 0, "an empty block")
    with pytest.raises(SyntaxError):
        mutations.apply(tmp_path / "src", tmp_path / "dst", bad)
    gone = mutations.Mutant("gone", "a.py", "z = 2", "z = 3", 0, "text that is not there")
    with pytest.raises(ValueError, match="does not occur"):
        mutations.apply(tmp_path / "src", tmp_path / "dst2", gone)


def test_the_copy_of_the_checkout_is_what_its_tests_import(tmp_path):
    """The package is installed editable from the checkout, whose finder maps
    fastsiren.kernels to the real kernels/: without the copy's links the Triton modules would
    come from the checkout, and the import check must say so."""
    copy = tmp_path / "copy"
    mutations.copy_checkout(mutations.REPO_ROOT, copy)
    assert (copy / "fastsiren" / "kernels").is_symlink()
    modules = ["fastsiren.jet", "fastsiren.kernels.jet_math"]
    mutations.check_imports(copy, modules, {"TRITON_INTERPRET": "1"})
    (copy / "fastsiren" / "kernels").unlink()
    with pytest.raises(RuntimeError, match="would not test the copy"):
        mutations.check_imports(copy, modules, {"TRITON_INTERPRET": "1"})

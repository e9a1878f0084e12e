"""engineforge/settings.py: every ENGINEFORGE_* variable declared once, read through it, listed in README."""

import re
from pathlib import Path

from engineforge.settings import PREFIX, Settings, markdown_table, settings

ROOT = Path(__file__).resolve().parents[1]
CODE = ("engineforge", "flows", "tasks")


def test_readmes_table_is_the_declared_one():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("<!-- settings table -->\n", 1)[1].split("\n<!-- end settings table -->", 1)[0]
    assert table == markdown_table(), ("README's table of variables is stale: paste "
                                       "`python -c 'from engineforge.settings import markdown_table; print(markdown_table())'`")


def test_every_variable_the_code_names_is_declared_and_none_is_read_ad_hoc():
    declared = {PREFIX + name for name in Settings.model_fields}
    named, ad_hoc = set(), []
    for package in CODE:
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            named |= set(re.findall(r"\bENGINEFORGE_[A-Z_]+[A-Z]\b", text))
            ad_hoc += [f"{path.relative_to(ROOT)}: {m}" for m in re.findall(r"(?:environ|getenv)\W+[\"']ENGINEFORGE_\w+", text)]
    assert named <= declared, f"undeclared: {sorted(named - declared)}"
    assert ad_hoc == [], "read these through engineforge.settings.settings()"


def test_settings_read_the_environment_afresh(monkeypatch, tmp_path):
    monkeypatch.setenv("ENGINEFORGE_STORE", str(tmp_path))
    monkeypatch.setenv("ENGINEFORGE_REGISTRY_PASSWORD", "hunter2")
    assert settings().STORE == tmp_path and "hunter2" not in repr(settings())
    monkeypatch.delenv("ENGINEFORGE_STORE")
    assert settings().STORE == Path(".engineforge/store")

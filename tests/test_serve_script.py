"""scripts/serve installs the project only on the first run and when pyproject.toml changed since the last install."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Stand-ins on PATH: `python3 -m venv DIR` makes DIR/bin/python (which records each pip install) and DIR/bin/advisor
# (which says what it was asked to do); any other python3 call runs the real interpreter.
_PYTHON3 = textwrap.dedent(
    f"""\
    #!/usr/bin/env bash
    if [[ "$1" == "-m" && "$2" == "venv" ]]; then
        mkdir -p "$3/bin"
        printf '#!/usr/bin/env bash\\necho "$*" >> installs.log\\n' > "$3/bin/python"
        printf '#!/usr/bin/env bash\\necho "advisor $*"\\n' > "$3/bin/advisor"
        chmod +x "$3/bin/python" "$3/bin/advisor"
        exit 0
    fi
    exec {sys.executable} "$@"
    """
)


def _serve(repo: Path, path: str) -> str:
    done = subprocess.run(
        [str(repo / "scripts" / "serve"), "--port", "9"],
        cwd=repo,
        env=os.environ | {"PATH": path},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _installs(repo: Path) -> list[str]:
    log = repo / "installs.log"
    return [line for line in log.read_text().splitlines() if line.endswith("-e .")] if log.exists() else []


def test_installs_once_then_again_only_when_pyproject_changes(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "serve", repo / "scripts" / "serve")
    (repo / "pyproject.toml").write_text('[project]\nname = "advisor"\n')
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text(_PYTHON3)
    (bin_dir / "python3").chmod(0o755)
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"

    assert _serve(repo, path) == "advisor serve --port 9\n"  # a fresh clone: installed, then served
    assert len(_installs(repo)) == 1
    _serve(repo, path)
    assert len(_installs(repo)) == 1  # nothing changed: no install
    (repo / "pyproject.toml").write_text('[project]\nname = "advisor"\ndependencies = ["msgspec"]\n')
    _serve(repo, path)
    assert len(_installs(repo)) == 2
    _serve(repo, path)
    assert len(_installs(repo)) == 2
    (repo / ".venv" / "bin" / "advisor").unlink()  # a broken environment is installed again
    _serve(repo, path)
    assert len(_installs(repo)) == 3

"""Audit the locked dependencies (what `make` installed into .venv) for known vulnerabilities.

Fails (exit 1) on a vulnerability that has a fixed version: upgrade the pin. Runs
pip-audit over `pip freeze` of the venv, asking OSV first and PyPI's JSON API second.

From the CI machines neither can answer for a pinned version (OSV's host does not
resolve; the registry serves a project's JSON but answers 404 for a version's, which is
where PyPI lists its vulnerabilities): every dependency then comes back "not audited",
which this script reports loudly and, unless AUDIT_STRICT=1, does not fail on.

    python .ci/audit.py .venv              # audit the venv
    python .ci/audit.py --report FILE      # judge a saved `pip-audit -f json` report
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def judge(report: dict) -> int:
    deps = report.get("dependencies", [])
    fixable = [(d["name"], d["version"], v["id"], v["fix_versions"])
               for d in deps for v in d.get("vulns", []) if v.get("fix_versions")]
    unfixed = [(d["name"], v["id"]) for d in deps for v in d.get("vulns", [])
               if not v.get("fix_versions")]
    skipped = [d for d in deps if d.get("skip_reason")]
    for name, version, vuln, fixes in fixable:
        print(f"VULNERABLE {name} {version}: {vuln}, fixed in {', '.join(fixes)}")
    for name, vuln in unfixed:
        print(f"known, no fix yet: {name} {vuln}")
    audited = len(deps) - len(skipped)
    print(f"audit: {audited} of {len(deps)} dependencies audited, {len(fixable)} "
          f"vulnerabilities with a fix, {len(unfixed)} without")
    if fixable:
        return 1
    if skipped and not audited:
        print("WARNING: no vulnerability data reachable for these pins "
              f"(e.g. {skipped[0]['name']}: {skipped[0]['skip_reason']})")
        return 1 if os.environ.get("AUDIT_STRICT") == "1" else 0
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--report"]:
        return judge(json.loads(Path(argv[1]).read_text(encoding="utf-8")))
    venv = Path(argv[0] if argv else ".venv")
    frozen = subprocess.run([venv / "bin" / "pip", "freeze", "--exclude-editable"],
                            check=True, capture_output=True, text=True).stdout
    with tempfile.TemporaryDirectory() as tmp:
        locked, out = Path(tmp) / "locked.txt", Path(tmp) / "audit.json"
        locked.write_text(frozen, encoding="utf-8")
        for service in ("osv", "pypi"):
            subprocess.run([venv / "bin" / "pip-audit", "-r", locked, "--no-deps",
                            "--disable-pip", "-s", service, "-f", "json", "-o", out],
                           capture_output=True, text=True)
            if out.exists():
                print(f"audit: vulnerability service {service}")
                return judge(json.loads(out.read_text(encoding="utf-8")))
            print(f"audit: vulnerability service {service} unreachable")
    print("WARNING: no vulnerability service reachable; dependencies not audited")
    return 1 if os.environ.get("AUDIT_STRICT") == "1" else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Write template.yaml as CloudFormation sees it after the SAM transform (for checkov, which
does not run the transform itself): `python scripts/sam_transform.py OUT.json`."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from lambdaserve.local.template import packaged_template, sam_transform

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    out = Path(sys.argv[1])
    out.parent.mkdir(parents=True, exist_ok=True)
    cfn = sam_transform(packaged_template(ROOT / "template.yaml"))
    out.write_text(json.dumps(cfn, indent=2) + "\n", encoding="utf-8")

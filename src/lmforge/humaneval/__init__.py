"""Human evaluation: blind A/B preferences and Likert ratings collected in the browser, stored safely, turned
into a ranking with confidence intervals, agreement figures, and the agreement of BLEU / chrF with people.

    lmforge humaneval create --name mt --system A=a.jsonl --system B=b.jsonl --source src.txt --out study.db
    lmforge humaneval serve --study study.db          # prints one private link per rater
    lmforge humaneval report --study study.db --out report/
    lmforge humaneval demo --simulate 6 --out demo/

- `study`: reading the systems' outputs, the design (who judges what, in which order), the SQLite file.
- `stats`: Cohen's and Fleiss' κ, Krippendorff's α, Bradley–Terry with bootstrap intervals, Kendall's τ.
- `report`: report.json, the HTML page and its plots; CSV and FastChat battle exports.
- `app`, `page`: the FastAPI app and the rating page (needs the `serve` extra; imported only by `serve`).
- `simulate`: simulated raters from a known Bradley–Terry model, and the demo that ships in `demo_data/`.
"""

from lmforge.humaneval.report import analyze, export_battles, export_csv, write_report
from lmforge.humaneval.simulate import demo, simulate
from lmforge.humaneval.study import Study, create_study, read_outputs

__all__ = [
    "Study",
    "analyze",
    "create_study",
    "demo",
    "export_battles",
    "export_csv",
    "read_outputs",
    "simulate",
    "write_report",
]

"""HTML reports of hytip-bench: RD curves, BD-rate tables, complexity, reproduction and provenance (`run_bench.py report`).

Modules by job: ``inputs`` reads the results tables and sweep folders, ``bd`` computes the BD tables (through
bench.analysis.bdrate) with notes instead of crashes, ``complexity`` and ``reproduction`` compare with the published
data of anchors/, ``figures`` draws with matplotlib, ``tables`` and ``latex`` format and export tables, ``build``
assembles the page from the jinja2 templates in ``templates/``.
"""
from reports.build import ReportOptions, build_published_report, build_report

__all__ = ["ReportOptions", "build_report", "build_published_report"]

"""Agenda sources: one module per kind, the same small interface (DESIGN.md, "Agenda
sources"): ``busy(source, now, until) -> Busy`` reads what the external agenda says is busy;
``test(source) -> str`` says whether it answers. Adding a kind means copying one module."""

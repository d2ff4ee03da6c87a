"""Self-contained HTML reports: the shared page (stylesheet, escaping, number formatting, atomic
writing) and the inline-SVG charts that the data and evaluation reports draw with."""

"""Staff dashboards: revenue, retention, unit economics, concentration, pipeline and forecast.

Every page is server-rendered for ``request.tenant`` (a staff member's active membership) in the
tenant's language. Each page is a list of *panels*; a panel has a table (the figures, always shown)
and usually a chart drawn by ``static/portal/dashboards.js`` from JSON embedded with
``json_script``; every table downloads as CSV at ``<page>/<panel>.csv`` with the page's query.

Figures come from ``revenue.selectors`` only; this package picks, labels and rounds them for
display (money to cents, ratios to 4 places in CSV, ROUND_HALF_UP). The monthly figures of closed
months are read from MetricSnapshot when every month asked for is frozen (one query, whatever the
number of contracts), else computed live. Queries per page do not grow with customers or contracts.

One module per dashboard builds its page's KPIs and panels; ``panels`` holds the shared table,
chart and formatting helpers, ``common`` the query parameters, ``pages`` the registry. The views
are in ``portal.views.dashboards``. Bad query parameters give a 400 page naming the problem; a
missing exchange rate a 409 page. tests/portal/test_no_arithmetic.py keeps arithmetic out.
"""

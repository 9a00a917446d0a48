"""The least-squares line fit of the bench reports (bench/scaling/report.py, bench/sim/roofline.py):
cost = a * pairs + b, with R²."""
import numpy as np


def linear_fit(x, y):
    """y = a*x + b by least squares: (a, b, R², the fitted values)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    a, b = np.polyfit(x, y, 1)
    pred = a * x + b
    ss_res, ss_tot = float(((y - pred) ** 2).sum()), float(((y - y.mean()) ** 2).sum())
    return a, b, (1 - ss_res / ss_tot if ss_tot > 0 else 1.0), pred

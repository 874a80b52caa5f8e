"""Customer economics: cost to serve, margins, profitability, ROI, churn risk, pricing what-ifs, anomalies."""

"""What work beyond training costs: the usage ledger, its allocation, reports and budgets."""

"""Reports: console tables, CSV and JSON files, plots."""

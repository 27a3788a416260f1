"""The league's report (the report stage): records of each model, the table, the recommendation,
the champion in MLflow, gallery, figures, lineage and speed/quality; compare sets two runs side by side."""

"""Reactions from the public: classification, clustering and spike detection.

Pure Python, no Flask and no database: ``classify`` (category, urgency, sentiment, language with
the cues that decided them), ``cluster`` (incremental, serialisable clusters per incident) and
``spikes`` (volume spikes against the incident's own baseline). The blueprint and tasks that
store reactions build on these modules.
"""

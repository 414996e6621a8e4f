"""Active learning of Δ models: rounds that label where the model's own MD leaves its data.

``explore`` runs short MD with the current Δ model and records each part's uncertainty
relative to its threshold; ``candidates`` collects the frames that left the data (or came
just before a failure), picks a diverse subset and says which parts need them; ``pool``
appends their labels to the training pool of those parts; ``rounds`` decides whether
another round is needed and records and draws the rounds.
"""

"""The full game of Texas 42 (spec: Full game): the auction, hands scored in marks, games to 7 marks."""

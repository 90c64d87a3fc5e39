"""The game's knowledge: what one seat may know, as tokens and as a validated information state.

- encoding: a seat's observation as integer-featured tokens for the transformer (layout in the module)
- infoset: a seat's information state (hand, contract, public plays), validated, and deals consistent with it

The play-phase engine itself is `zeb_core.engine`.
"""

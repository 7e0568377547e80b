"""The role commands of ``qcl``: one module per role, plus the wallet; ``shared`` holds what they all use.

They act only through the SDK and the public API, signed with the key of a
local wallet, exactly as a member's own software would.
"""

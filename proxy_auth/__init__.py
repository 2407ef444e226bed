"""Who may certify for whom: bindings of relatives to elderly beneficiaries, limits, consent, operator checks."""

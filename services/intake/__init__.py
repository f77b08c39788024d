"""Referral and tip API, encrypted identity store, disclosure-filtered reads, consent, status."""

"""kdump readiness of a live host: facts gathered over SSH, checks over those facts."""

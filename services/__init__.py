"""NRM Exchange services. Each service imports `services.common` and `contracts`, never another."""

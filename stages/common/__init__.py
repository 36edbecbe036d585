"""Small helpers shared by every stage: errors, logging, devices, seeding."""

"""The language agencies and services speak: models, JSON Schemas and the AsyncAPI document.

Imports no service code.
"""

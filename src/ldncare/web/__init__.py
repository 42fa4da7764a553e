"""The web app: JSON API and server-rendered pages for clinicians and patients.

Build it with :func:`ldncare.web.app.create_app`; ``ldncare serve`` runs it under uvicorn.
"""

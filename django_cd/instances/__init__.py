"""Testing instances: one per feature branch or pull request, each on a fresh copy of
the staging database, created and destroyed by one command (docs/instances.md).

An instance is a derived environment (``<template>.<name>``) with its own root,
app server, URL and database, deployed by the normal engine (``django_cd.pipeline``).
``config`` reads a template, ``database`` copies, ``registry`` keeps the records,
``lifecycle`` creates, deploys, refreshes and destroys. Nothing is imported here,
so the app's start-up (and every web worker) loads only ``config`` and ``checks``.
"""

"""(being written)"""

from __future__ import annotations

from fastapi import APIRouter

from service.console.web import PREFIX

router = APIRouter(prefix=PREFIX)

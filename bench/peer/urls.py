"""The health check as the django-q2 documentation suggests it: a Django view that
asks django-q for cluster Stats, served by Django under a WSGI server."""

from django.http import HttpResponse
from django.urls import path
from django_q.conf import Conf
from django_q.status import Stat


def health(request):
    ok = any(stat.status in (Conf.IDLE, Conf.WORKING) for stat in Stat.get_all())
    return HttpResponse("ok" if ok else "down", status=200 if ok else 500)


urlpatterns = [path("health/", health)]

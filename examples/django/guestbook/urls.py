from django.urls import path

from . import views

urlpatterns = [
    path("entries/", views.entries, name="entries"),
    path("entries/<int:pk>/", views.entry, name="entry"),
    path("node/", views.node, name="node"),
]

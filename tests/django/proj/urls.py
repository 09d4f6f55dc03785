from django.urls import path

from notes import views

urlpatterns = [
    path("notes/", views.notes),
    path("notes/write/", views.write),
    path("notes/stream/", views.stream),
    path("notes/wrapped/", views.wrapped),
    path("notes/boom/", views.boom),
]

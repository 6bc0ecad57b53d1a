"""The classifier pages of the dashboard."""

from django.urls import URLPattern, path

from classifier import views

urlpatterns: list[URLPattern] = [
    path("classify/", views.classify_page, name="classify-page"),
    path("providers/", views.providers_page, name="providers-page"),
]

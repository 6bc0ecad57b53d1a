from django.urls import path

from images.api import views

urlpatterns = [
    path("images/limits", views.ImageLimitsApi.as_view(), name="image-limits"),
]

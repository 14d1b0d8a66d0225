from django.contrib import admin

from .models import Counter

admin.site.register(Counter)

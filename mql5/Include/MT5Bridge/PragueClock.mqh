//+------------------------------------------------------------------+
//| MT5Bridge/PragueClock.mqh                                        |
//| FTMO's day starts at midnight in Prague. The terminal has no     |
//| time-zone database, so the EU rule is written out: Central       |
//| European Summer Time (UTC+2) from the last Sunday of March to    |
//| the last Sunday of October, both at 01:00 UTC; UTC+1 otherwise.  |
//| Every function takes UTC (TimeGMT()) and returns UTC.            |
//+------------------------------------------------------------------+
#ifndef MT5B_PRAGUE_CLOCK_MQH
#define MT5B_PRAGUE_CLOCK_MQH

#define SECONDS_PER_DAY     86400
#define PRAGUE_WINTER_S     3600
#define PRAGUE_SUMMER_S     7200

//--- 01:00 UTC on the last Sunday of a month: when EU summer time starts (March) or ends (October)
datetime LastSundayOneUtc(const int year,const int month)
  {
   MqlDateTime first_of_next;
   first_of_next.year=(month==12) ? year+1 : year;
   first_of_next.mon=(month==12) ? 1 : month+1;
   first_of_next.day=1;
   first_of_next.hour=0;
   first_of_next.min=0;
   first_of_next.sec=0;
   first_of_next.day_of_week=0;
   first_of_next.day_of_year=0;
   datetime last_day=StructToTime(first_of_next)-SECONDS_PER_DAY;
   MqlDateTime parts;
   TimeToStruct(last_day,parts);
   // day_of_week: 0 is Sunday, so step back that many days
   return(last_day-parts.day_of_week*SECONDS_PER_DAY+3600);
  }

//--- Prague's offset from UTC at a UTC moment, in seconds
int PragueOffsetSeconds(const datetime utc)
  {
   MqlDateTime parts;
   TimeToStruct(utc,parts);
   datetime summer_starts=LastSundayOneUtc(parts.year,3);
   datetime summer_ends=LastSundayOneUtc(parts.year,10);
   if(utc>=summer_starts && utc<summer_ends)
      return(PRAGUE_SUMMER_S);
   return(PRAGUE_WINTER_S);
  }

//+------------------------------------------------------------------+
//| The UTC moment of the latest midnight in Prague at or before     |
//| utc. The clocks change at 02:00/03:00 local time, never at       |
//| midnight, so the offset in force two hours before a midnight in  |
//| UTC+2 tells which offset that midnight had.                      |
//+------------------------------------------------------------------+
datetime PragueMidnightUtc(const datetime utc)
  {
   long local=(long)utc+PragueOffsetSeconds(utc);
   long local_midnight=local-(local%SECONDS_PER_DAY);
   if(PragueOffsetSeconds((datetime)(local_midnight-PRAGUE_SUMMER_S))==PRAGUE_SUMMER_S)
      return((datetime)(local_midnight-PRAGUE_SUMMER_S));
   return((datetime)(local_midnight-PRAGUE_WINTER_S));
  }

//--- the Prague day of a UTC moment as a number (days since 1970 at Prague midnight); equal numbers, same day
long PragueDayKey(const datetime utc)
  {
   return(((long)PragueMidnightUtc(utc)+PRAGUE_SUMMER_S)/SECONDS_PER_DAY);
  }

//+------------------------------------------------------------------+
//| Trade-server time minus UTC, rounded to the quarter hour: the    |
//| two clocks are read a moment apart and the PC clock may be a few |
//| seconds off, while real offsets are whole quarter hours.         |
//+------------------------------------------------------------------+
long QuarterHourOffset(const datetime server_time,const datetime utc)
  {
   long difference=(long)server_time-(long)utc;
   return((long)MathRound(difference/900.0)*900);
  }

#endif // MT5B_PRAGUE_CLOCK_MQH
